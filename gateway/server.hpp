// The gateway's network side (Boost.Beast, one port): a listener, HTTP/1.1
// sessions with keep-alive that feed `api`, and WebSocket sessions on `/v1/ws`.
// Runs `node.io_threads` Asio threads; every connection lives on its own strand.
// Events from actors reach a socket through its socket actor, which posts to the
// strand; each socket's write queue is bounded and a slow reader is closed.
#pragma once

#include "actors/node.hpp"
#include "gateway/api.hpp"
#include "gateway/auth.hpp"

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace presence::gateway {

/// Gateway counters for /metrics (relaxed atomics, any thread).
struct gateway_metrics {
  std::atomic<int64_t> connections{0};
  std::atomic<int64_t> sockets_open{0};
  std::atomic<uint64_t> http_requests{0};
  std::atomic<uint64_t> ws_frames_in{0};
  std::atomic<uint64_t> ws_frames_out{0};
  std::atomic<uint64_t> ws_closed_slow{0};
  std::atomic<uint64_t> ws_frames_coalesced{0}; ///< events replaced before sending
  std::atomic<uint64_t> ws_closed_policy{0};
  std::atomic<uint64_t> rejected_connections{0};
};

class server {
public:
  server(actors::node& n, const config::settings& cfg);
  ~server();

  server(const server&) = delete;
  server& operator=(const server&) = delete;

  /// Binds and starts the I/O threads; returns the bound port (which may have
  /// been 0 in the configuration). Throws std::runtime_error naming the address.
  uint16_t start();

  /// Closes every socket (WebSocket close 1001, sessions keep decaying) and stops
  /// the I/O threads.
  void stop();

  gateway_metrics& metrics() { return metrics_; }

  struct impl;

private:
  std::unique_ptr<impl> impl_;
  gateway_metrics metrics_;
};

} // namespace presence::gateway
