#include "actors/metrics.hpp"

#include <algorithm>

namespace presence::actors {

void lateness_histogram::record(int64_t late_ms) {
  auto i = static_cast<size_t>(std::clamp<int64_t>(late_ms, 0, buckets - 1));
  counts_[i].fetch_add(1, std::memory_order_relaxed);
}

uint64_t lateness_histogram::count() const {
  uint64_t n = 0;
  for (auto& c : counts_)
    n += c.load(std::memory_order_relaxed);
  return n;
}

int64_t lateness_histogram::quantile(double q) const {
  auto total = count();
  if (total == 0)
    return 0;
  auto want = static_cast<uint64_t>(q * static_cast<double>(total));
  uint64_t seen = 0;
  for (size_t i = 0; i < buckets; ++i) {
    seen += counts_[i].load(std::memory_order_relaxed);
    if (seen > want || seen == total)
      return static_cast<int64_t>(i);
  }
  return buckets - 1;
}

duration_histogram::duration_histogram(std::initializer_list<int64_t> bounds_ms) {
  for (auto b : bounds_ms)
    if (n_ < max_bounds)
      bounds_ms_[n_++] = b;
}

void duration_histogram::record(int64_t ms) {
  ms = std::max<int64_t>(ms, 0);
  auto end = bounds_ms_.begin() + static_cast<std::ptrdiff_t>(n_);
  auto i = static_cast<size_t>(std::lower_bound(bounds_ms_.begin(), end, ms) - bounds_ms_.begin());
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_ms_.fetch_add(ms, std::memory_order_relaxed);
}

uint64_t duration_histogram::count() const {
  uint64_t n = 0;
  for (size_t i = 0; i <= n_; ++i)
    n += counts_[i].load(std::memory_order_relaxed);
  return n;
}

std::string_view to_string(member_status x) {
  switch (x) {
    case member_status::up:
      return "up";
    case member_status::draining:
      return "draining";
    case member_status::unreachable:
      return "unreachable";
  }
  return "unreachable";
}

void lateness_histogram::reset() {
  for (auto& c : counts_)
    c.store(0, std::memory_order_relaxed);
}

} // namespace presence::actors
