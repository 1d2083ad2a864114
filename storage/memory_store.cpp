#include "storage/store.hpp"

#include <array>
#include <atomic>
#include <iterator>
#include <map>
#include <mutex>

namespace presence::storage {

std::string_view to_string(kind k) {
  switch (k) {
    case kind::sessions:
      return "sessions";
    case kind::users:
      return "users";
    case kind::rooms:
      return "rooms";
    case kind::intents:
      return "intents";
    case kind::timeline:
      return "timeline";
  }
  return "unknown";
}

namespace {

class memory_store : public store {
public:
  explicit memory_store(std::shared_ptr<std::atomic<bool>> fail_writes)
    : fail_writes_(std::move(fail_writes)) {}

  status write(const std::vector<mutation>& batch) override {
    if (fail_writes_ && fail_writes_->load())
      return "write of " + std::to_string(batch.size())
             + " records failed: injected fault";
    std::lock_guard<std::mutex> guard{mtx_};
    for (auto& m : batch) {
      auto& space = data_[static_cast<size_t>(m.k)];
      if (m.value)
        space[m.key] = *m.value;
      else
        space.erase(m.key);
    }
    return std::nullopt;
  }

  status scan(kind k,
              const std::function<void(std::string_view, std::string_view)>& f) override {
    std::lock_guard<std::mutex> guard{mtx_};
    for (auto& [key, value] : data_[static_cast<size_t>(k)])
      f(key, value);
    return std::nullopt;
  }

  std::optional<std::string> get(kind k, std::string_view key) override {
    std::lock_guard<std::mutex> guard{mtx_};
    auto& space = data_[static_cast<size_t>(k)];
    auto i = space.find(std::string{key});
    if (i == space.end())
      return std::nullopt;
    return i->second;
  }

  uint64_t size_bytes() override {
    std::lock_guard<std::mutex> guard{mtx_};
    uint64_t n = 0;
    for (auto& space : data_)
      for (auto& [key, value] : space)
        n += key.size() + value.size();
    return n;
  }

private:
  std::shared_ptr<std::atomic<bool>> fail_writes_;
  std::mutex mtx_;
  std::array<std::map<std::string, std::string>, std::size(all_kinds)>
    data_; // guarded by mtx_
};

} // namespace

std::unique_ptr<store> make_memory_store(std::shared_ptr<std::atomic<bool>> fail_writes) {
  return std::make_unique<memory_store>(std::move(fail_writes));
}

} // namespace presence::storage
