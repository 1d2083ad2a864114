// The HTTP API of PROTOCOL.md as a request -> response function over the node's
// actors, independent of sockets (the server feeds it parsed requests). It never
// blocks: each call to an actor goes through a short-lived requester actor with a
// timeout, and `done` is called exactly once, on a CAF worker or the calling
// thread; the caller must move the response to its own executor.
#pragma once

#include "actors/census.hpp"
#include "actors/node.hpp"
#include "gateway/auth.hpp"
#include "gateway/json_codec.hpp"
#include "gateway/request_target.hpp"

#include <caf/event_based_actor.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <string>

namespace presence::gateway {

struct http_request {
  std::string method; ///< "GET", "POST", ...
  std::string path;   ///< without the query string
  std::map<std::string, std::string> query;
  std::string body;
  std::string authorization; ///< header values
  std::string x_user;
  std::string x_role;
};

struct http_response {
  unsigned status = 200;
  std::string body; ///< JSON, or Prometheus text for /metrics
  std::string content_type = "application/json";
  int retry_after_s = 0; ///< > 0: a Retry-After header
  std::string location;  ///< non-empty: a Location header (redirects)
};

using respond_fn = std::function<void(http_response)>;

/// How long the gateway waits for an actor before answering 503.
inline constexpr std::chrono::seconds request_timeout{5};

/// Sends (xs...) to `dest` as a request and calls `done` with the reply or the
/// error. Never blocks; `done` runs on a CAF worker.
template <class T, class... Ts>
void ask(caf::actor_system& sys, const caf::actor& dest,
         std::function<void(caf::expected<T>)> done, Ts... xs) {
  auto fn = [](caf::event_based_actor* self, caf::actor to,
               std::function<void(caf::expected<T>)> cb, Ts... args) {
    actors::census::track(self, actors::census::kind::request);
    self->request(to, request_timeout, std::move(args)...)
      .then(
        [self, cb](T& x) {
          cb(caf::expected<T>{std::move(x)});
          self->quit();
        },
        [self, cb](caf::error& e) {
          cb(caf::expected<T>{std::move(e)});
          self->quit();
        });
  };
  sys.spawn(fn, dest, std::move(done), std::move(xs)...);
}

/// As `ask`, for requests whose reply is empty.
template <class... Ts>
void ask_unit(caf::actor_system& sys, const caf::actor& dest,
              std::function<void(caf::error)> done, Ts... xs) {
  auto fn = [](caf::event_based_actor* self, caf::actor to,
               std::function<void(caf::error)> cb, Ts... args) {
    actors::census::track(self, actors::census::kind::request);
    self->request(to, request_timeout, std::move(args)...)
      .then(
        [self, cb]() {
          cb(caf::error{});
          self->quit();
        },
        [self, cb](caf::error& e) {
          cb(std::move(e));
          self->quit();
        });
  };
  sys.spawn(fn, dest, std::move(done), std::move(xs)...);
}

class api {
public:
  api(actors::node& n, const authenticator& auth);

  /// Handles one request; calls `done` exactly once.
  void handle(const http_request& req, respond_fn done);

  /// The Prometheus text of /metrics (extra lines from the server appended).
  std::function<std::string()> metrics_text;

private:
  void route(const http_request& req, const principal& who, respond_fn& done);
  void leave_unloading(const http_request& req, const std::string& sid, respond_fn& done);
  // Reads a user's view: from its actor, or from its dormant record (or as a
  // user that never had a session) without starting an actor.
  void read_user(const std::string& id,
                 std::function<void(caf::expected<actors::user_view>)> f);

  actors::node& node_;
  const authenticator& auth_;
};

/// A JSON response.
http_response json_response(unsigned status, const json& body);

/// An error response.
http_response error_response(const api_error& e);

} // namespace presence::gateway
