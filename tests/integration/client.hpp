// A real HTTP and WebSocket client for integration tests (Boost.Beast), talking
// to 127.0.0.1 only. Every read has a deadline: a missing answer fails the test
// instead of hanging it.
#pragma once

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <map>
#include <optional>
#include <string>

namespace presence::testing {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using json = nlohmann::json;

struct http_result {
  unsigned status = 0;
  json body;
  std::string raw;
  std::map<std::string, std::string> headers;
};

/// One keep-alive HTTP connection.
class http_client {
public:
  explicit http_client(uint16_t port) : stream_(ioc_) {
    stream_.expires_after(std::chrono::seconds{10});
    stream_.connect(tcp::endpoint{net::ip::make_address("127.0.0.1"), port});
  }

  /// Sends a request; `user` sets X-User (dev mode), `bearer` a token.
  http_result request(http::verb method, const std::string& target,
                      const std::string& body = {}, const std::string& user = {},
                      const std::string& bearer = {}) {
    return request(std::string{http::to_string(method)}, target, body, user, bearer);
  }

  /// As above, with any method name (also ones Beast has no verb for).
  http_result request(const std::string& method, const std::string& target,
                      const std::string& body = {}, const std::string& user = {},
                      const std::string& bearer = {}) {
    http::request<http::string_body> req;
    req.method_string(method);
    req.target(target);
    req.version(11);
    req.set(http::field::host, "127.0.0.1");
    if (!user.empty())
      req.set("X-User", user);
    if (!bearer.empty())
      req.set(http::field::authorization, "Bearer " + bearer);
    if (!body.empty()) {
      req.set(http::field::content_type, "application/json");
      req.body() = body;
    }
    req.prepare_payload();
    stream_.expires_after(std::chrono::seconds{10});
    http::write(stream_, req);
    beast::flat_buffer buf;
    http::response_parser<http::string_body> parser;
    parser.body_limit(16 * 1024 * 1024);
    http::read(stream_, buf, parser);
    auto res = parser.release();
    http_result out;
    out.status = res.result_int();
    out.raw = res.body();
    for (auto& f : res)
      out.headers[std::string{f.name_string()}] = std::string{f.value()};
    if (!out.raw.empty())
      out.body = json::parse(out.raw, nullptr, false);
    return out;
  }

  http_result get(const std::string& t, const std::string& user = "alice") {
    return request(http::verb::get, t, {}, user);
  }
  http_result post(const std::string& t, const json& body,
                   const std::string& user = "alice") {
    return request(http::verb::post, t, body.dump(), user);
  }
  http_result del(const std::string& t, const std::string& user = "alice") {
    return request(http::verb::delete_, t, {}, user);
  }

private:
  net::io_context ioc_;
  beast::tcp_stream stream_;
};

/// One WebSocket; frames are JSON objects.
class ws_client {
public:
  /// Connects to /v1/ws as `user` (dev mode) or with `?token=`.
  ws_client(uint16_t port, const std::string& user, const std::string& token = {})
    : ws_(ioc_) {
    auto& s = beast::get_lowest_layer(ws_);
    s.expires_after(std::chrono::seconds{10});
    s.connect(tcp::endpoint{net::ip::make_address("127.0.0.1"), port});
    s.expires_never();
    ws_.set_option(websocket::stream_base::decorator([user](websocket::request_type& r) {
      if (!user.empty())
        r.set("X-User", user);
    }));
    ws_.handshake("127.0.0.1", token.empty() ? "/v1/ws" : "/v1/ws?token=" + token);
  }

  void send(const json& j) { send_text(j.dump()); }
  void send_text(const std::string& s) {
    ws_.text(true);
    ws_.write(net::buffer(s));
  }
  void send_binary(const std::string& s) {
    ws_.binary(true);
    ws_.write(net::buffer(s));
  }

  /// The next frame, or nothing within `timeout` (or when the socket closed).
  std::optional<json> read(std::chrono::milliseconds timeout = std::chrono::seconds{5}) {
    if (closed_)
      return std::nullopt;
    beast::flat_buffer buf;
    std::optional<json> out;
    bool done = false;
    ws_.async_read(buf, [&](beast::error_code ec, size_t) {
      done = true;
      if (ec) {
        closed_ = true;
        close_code_ = static_cast<unsigned>(ws_.reason().code);
        return;
      }
      out = json::parse(beast::buffers_to_string(buf.data()), nullptr, false);
    });
    ioc_.restart();
    ioc_.run_for(timeout);
    if (!done) {
      beast::get_lowest_layer(ws_).cancel();
      ioc_.restart();
      ioc_.run_for(std::chrono::seconds{1});
    }
    return out;
  }

  /// The next frame whose op is `op`, skipping others, within `timeout`.
  std::optional<json> read_op(const std::string& op,
                              std::chrono::milliseconds timeout = std::chrono::seconds{5}) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
      auto f = read(left);
      if (!f)
        return std::nullopt;
      if (f->value("op", "") == op)
        return f;
    }
    return std::nullopt;
  }

  bool closed() const { return closed_; }
  unsigned close_code() const { return close_code_; }

  /// Closes with `code` (the close handshake: the server's answer is read).
  void close(unsigned code) {
    beast::error_code ec;
    ws_.close(websocket::close_reason{static_cast<std::uint16_t>(code)}, ec);
    closed_ = true;
  }

  /// Drops the TCP connection without a close frame (a vanished client).
  void drop() {
    beast::error_code ec;
    beast::get_lowest_layer(ws_).socket().close(ec);
    closed_ = true;
  }

private:
  net::io_context ioc_;
  websocket::stream<beast::tcp_stream> ws_;
  bool closed_ = false;
  unsigned close_code_ = 0;
};

} // namespace presence::testing
