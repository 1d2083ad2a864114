// The gateway's network side (Boost.Beast, one port): a listener, HTTP/1.1
// sessions with keep-alive that feed `api`, and WebSocket sessions on `/v1/ws`.
// Runs `node.io_threads` Asio threads; every connection lives on its own strand.
// Events from actors reach a socket through its socket actor, which posts to the
// strand; each socket's write queue is bounded and a slow reader is closed.
#pragma once

#include "actors/node.hpp"
#include "gateway/api.hpp"
#include "gateway/auth.hpp"

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace presence::gateway {

/// The close code of a socket whose session another socket resumed (after an
/// `error session_taken_over` frame): one session, one socket.
inline constexpr unsigned taken_over_close_code = 4409;

/// The WebSocket close codes presence_ws_closed_total names; every other code
/// counts as "other". 1006 (never sent in a frame) stands for a connection that
/// ended without a close handshake (a vanished peer, a ping timeout).
inline constexpr std::array<unsigned, 8> ws_close_codes = {
  1000, 1001, 1006, 1008, 1009, 1011, 1013, taken_over_close_code};
/// Slots of presence_ws_closed_total: one per code, then "other".
inline constexpr size_t ws_close_slots = ws_close_codes.size() + 1;

/// The slot of close code `code` (the last one, "other", if it is not listed).
constexpr size_t ws_close_slot(unsigned code) {
  for (size_t i = 0; i < ws_close_codes.size(); ++i)
    if (ws_close_codes[i] == code)
      return i;
  return ws_close_codes.size();
}

/// The `code` label of slot `i`.
inline std::string ws_close_label(size_t i) {
  return i < ws_close_codes.size() ? std::to_string(ws_close_codes[i]) : "other";
}

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
  /// WebSockets ended, by the close code that ended them (ws_close_slot): the
  /// one the node sent, or the peer's when the peer closed first.
  std::array<std::atomic<uint64_t>, ws_close_slots> ws_closed{};
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

  /// Shards of the node's event fan-out: one per scheduler worker (at least 2).
  size_t fanout_shards() const;

  struct impl;

private:
  std::unique_ptr<impl> impl_;
  gateway_metrics metrics_;
};

} // namespace presence::gateway
