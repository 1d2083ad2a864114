// Waiting the way integration tests wait: poll with a deadline, never a fixed
// sleep; plus the wall clock and one /metrics value, read as a client would.
#pragma once

#include "client.hpp"

#include <chrono>
#include <cstdint>
#include <string>
#include <thread>

namespace presence::testing {

/// The wall clock in epoch milliseconds (server times are in these).
inline int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

/// Polls `f` every 10 ms until it holds or `timeout` passes; its last answer.
template <class F>
bool eventually(F f, std::chrono::milliseconds timeout = std::chrono::seconds{10}) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (f())
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  }
  return f();
}

/// The value of an unlabelled series in the node's /metrics, or -1 if absent.
inline double metric(http_client& http, const std::string& name) {
  auto r = http.get("/metrics", "");
  auto pos = r.raw.find("\n" + name + " ");
  if (pos == std::string::npos)
    return -1;
  return std::stod(r.raw.substr(pos + name.size() + 2));
}

} // namespace presence::testing
