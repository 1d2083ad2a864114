// Measuring helpers for the in-process benchmarks: this process's resident
// memory and CPU time, elapsed time, waiting for a condition, live sessions.
#pragma once

#include "actors/metrics.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <fstream>
#include <thread>

namespace presence::bench {

inline double rss_mib() {
  std::ifstream in{"/proc/self/statm"};
  long size = 0, resident = 0;
  in >> size >> resident;
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE))
         / (1024.0 * 1024.0);
}

inline double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec)
         + static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

inline double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

/// Polls `pred` every 2 ms; false if it did not hold within `timeout_s`.
template <class Pred>
bool wait_for(Pred pred, double timeout_s) {
  auto start = std::chrono::steady_clock::now();
  while (!pred()) {
    if (seconds_since(start) > timeout_s)
      return false;
    std::this_thread::sleep_for(std::chrono::milliseconds{2});
  }
  return true;
}

inline int64_t live_sessions(actors::runtime_metrics& m) {
  int64_t n = 0;
  for (auto& g : m.sessions_by_state)
    n += g.load();
  return n;
}

} // namespace presence::bench
