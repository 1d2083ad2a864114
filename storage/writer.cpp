#include "storage/writer.hpp"

#include <algorithm>
#include <chrono>
#include <functional>

namespace presence::storage {

snapshot_writer::snapshot_writer(store& s, int64_t flush_interval_ms, error_fn on_error)
  : store_(s), interval_ms_(flush_interval_ms), on_error_(std::move(on_error)) {
}

snapshot_writer::~snapshot_writer() {
  stop();
}

void snapshot_writer::start() {
  if (thread_.joinable())
    return;
  {
    std::lock_guard<std::mutex> guard{run_mtx_};
    stopping_ = false;
  }
  thread_ = std::thread{[this] { run(); }};
}

void snapshot_writer::stop() {
  if (thread_.joinable()) {
    {
      std::lock_guard<std::mutex> guard{run_mtx_};
      stopping_ = true;
    }
    run_cv_.notify_all();
    thread_.join();
  }
  flush();
}

void snapshot_writer::run() {
  std::unique_lock<std::mutex> lock{run_mtx_};
  while (!stopping_) {
    run_cv_.wait_for(lock, std::chrono::milliseconds{interval_ms_},
                     [this] { return stopping_; });
    if (stopping_)
      break;
    lock.unlock();
    flush();
    lock.lock();
  }
}

void snapshot_writer::submit(std::string full_key, change c) {
  stats_.changes.fetch_add(1, std::memory_order_relaxed);
  auto& sh = shard_of(full_key);
  std::lock_guard<std::mutex> guard{sh.mtx};
  sh.changes.insert_or_assign(std::move(full_key), std::move(c));
}

snapshot_writer::shard& snapshot_writer::shard_of(const std::string& full_key) {
  return shards_[std::hash<std::string>{}(full_key) % shard_count];
}

std::string snapshot_writer::full_key(kind k, std::string_view key) {
  std::string out;
  out.reserve(key.size() + 1);
  out.push_back(static_cast<char>(k));
  out += key;
  return out;
}

void snapshot_writer::put(record r) {
  submit(full_key(kind_of(r), key_of(r)), encode_record(r));
}

void snapshot_writer::erase(kind k, std::string key) {
  submit(full_key(k, key), std::nullopt);
}

size_t snapshot_writer::pending() const {
  size_t n = 0;
  for (auto& sh : shards_) {
    std::lock_guard<std::mutex> guard{sh.mtx};
    n += sh.changes.size();
  }
  return n;
}

size_t snapshot_writer::unwritten() const {
  // Pending first: a shard's changes are counted in flight (under its lock)
  // before they leave it, so a change being moved is counted at least once.
  auto waiting = pending();
  return waiting + in_flight_.load(std::memory_order_acquire);
}

size_t snapshot_writer::flush() {
  std::lock_guard<std::mutex> one_at_a_time{flush_mtx_};
  auto started = std::chrono::steady_clock::now();
  std::vector<mutation> taken;
  for (auto& sh : shards_) {
    change_map m;
    {
      std::lock_guard<std::mutex> guard{sh.mtx};
      m.swap(sh.changes);
      sh.changes.reserve(m.size()); // the next interval is likely as busy
      in_flight_.fetch_add(m.size(), std::memory_order_acq_rel);
    }
    taken.reserve(taken.size() + m.size());
    while (!m.empty()) {
      auto node = m.extract(m.begin());
      auto& full_key = node.key();
      taken.push_back(mutation{static_cast<kind>(full_key[0]), full_key.substr(1),
                               std::move(node.mapped())});
    }
  }
  if (taken.empty())
    return 0;
  // In key order: RocksDB inserts sorted keys into its memtable faster.
  std::sort(taken.begin(), taken.end(), [](const mutation& a, const mutation& b) {
    return a.k != b.k ? a.k < b.k : a.key < b.key;
  });
  size_t written = 0; // entries of `taken` written, a prefix
  bool failed = false;
  std::vector<mutation> batch;
  for (size_t i = 0; i < taken.size() && !failed;) {
    auto end = std::min(taken.size(), i + max_batch_records);
    uint64_t bytes = 0;
    batch.assign(std::make_move_iterator(taken.begin() + static_cast<std::ptrdiff_t>(i)),
                 std::make_move_iterator(taken.begin() + static_cast<std::ptrdiff_t>(end)));
    for (auto& m : batch)
      bytes += m.value ? m.value->size() : 0;
    if (auto err = store_.write(batch)) {
      failed = true;
      stats_.write_errors.fetch_add(1, std::memory_order_relaxed);
      if (on_error_)
        on_error_(*err);
      // Give the batch back for the retry below.
      std::move(batch.begin(), batch.end(),
                taken.begin() + static_cast<std::ptrdiff_t>(i));
    } else {
      written = end;
      stats_.records_written.fetch_add(batch.size(), std::memory_order_relaxed);
      stats_.bytes_written.fetch_add(bytes, std::memory_order_relaxed);
      stats_.batches.fetch_add(1, std::memory_order_relaxed);
    }
    i = end;
  }
  if (failed) {
    // Keep what was not written; a change handed in meanwhile is newer and wins.
    for (size_t j = written; j < taken.size(); ++j) {
      auto& m = taken[j];
      auto fk = full_key(m.k, m.key);
      auto& sh = shard_of(fk);
      std::lock_guard<std::mutex> guard{sh.mtx};
      sh.changes.try_emplace(std::move(fk), std::move(m.value));
    }
  }
  in_flight_.store(0, std::memory_order_release);
  stats_.last_flush_us.store(
    static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                            std::chrono::steady_clock::now() - started)
                            .count()),
    std::memory_order_relaxed);
  return written;
}

} // namespace presence::storage
