#include "gateway/server.hpp"

#include "actors/census.hpp"
#include "actors/errors.hpp"
#include "actors/ids.hpp"
#include "gateway/fanout.hpp"
#include "gateway/metrics_text.hpp"
#include "gateway/token_bucket.hpp"
#include "gateway/ws_ops.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <spdlog/spdlog.h>

#include <chrono>
#include <deque>
#include <mutex>
#include <optional>
#include <set>
#include <unordered_map>
#include <variant>
#include <stdexcept>

namespace presence::gateway {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using namespace presence::actors;

namespace {

constexpr auto http_idle_timeout = std::chrono::seconds{30};
constexpr size_t max_header_bytes = 16 * 1024;
/// Frames a socket may have queued that are not coalesced (replies, errors,
/// intents, acks; events of a topic replace their unsent predecessor): beyond
/// this the reader is far behind and is closed (1013) whatever its age.
constexpr size_t max_queued_frames = 4096;
/// Topics one socket may receive (users and rooms together).
constexpr size_t max_topics_per_socket = 10000;
/// SO_SNDBUF of a WebSocket (Linux doubles it for its bookkeeping).
constexpr int ws_send_buffer_bytes = 128 * 1024;
/// Frames a socket buffers while its `hello` resumes a session.
constexpr size_t max_frames_before_welcome = 64;
/// How long a closing socket's peer has to answer the close before its TCP
/// connection is cut (a peer that does not read never answers).
constexpr auto close_grace = std::chrono::seconds{1};
/// How long a socket upgraded without a token may wait to send `hello {token}`.
constexpr auto hello_token_timeout = std::chrono::seconds{5};
/// Malformed frames in a row before the socket is closed with 1008.
constexpr int max_strikes = 10;
/// The close code of a socket whose session another socket resumed (an
/// application code: 4000-4999; 4409 as in HTTP's 409 Conflict).
constexpr auto taken_over_close = static_cast<websocket::close_code>(taken_over_close_code);

class ws_session;

using watch_atom = caf::atom_constant<caf::atom("watch")>;
using unwatch_atom = caf::atom_constant<caf::atom("unwatch")>;

/// How soon a socket looks its session up again after the copy it watched
/// went down without ending (its node stopped or failed).
constexpr auto rewatch_delay = std::chrono::milliseconds{250};

class http_session;

} // namespace

struct server::impl {
  impl(actors::node& n, const config::settings& c, gateway_metrics& m)
    : node(n), cfg(c), auth(c.auth), api_(n, auth), metrics(m),
      events(n), // a shard per scheduler worker (the config may say 0: automatic)
      acceptor(ioc) {
  }

  actors::node& node;
  const config::settings& cfg;
  authenticator auth;
  api api_;
  gateway_metrics& metrics;
  http_metrics http;
  fanout events;
  // Declared before the io_context, so destroyed after it: destroying the
  // io_context destroys the sessions its pending handlers hold, and a
  // session's destructor uses these.
  std::mutex sockets_mtx;
  std::set<std::weak_ptr<ws_session>, std::owner_less<std::weak_ptr<ws_session>>>
    sockets; // guarded by sockets_mtx
  std::set<caf::actor_addr> socket_actors; // guarded by sockets_mtx: every socket's
                                           // actor (stopped with the gateway)
  std::atomic<std::chrono::steady_clock::rep> slow_logged_at{0}; ///< last slow-reader line
  std::atomic<uint64_t> slow_unlogged{0}; ///< slow readers closed without a line
  std::mutex awaiting_mtx;
  std::set<std::shared_ptr<http_session>> awaiting; // guarded by awaiting_mtx:
                                                    // requests the actors answer
  net::io_context ioc;
  tcp::acceptor acceptor;
  std::vector<std::thread> threads;

  void do_accept();
};

namespace {

http::response<http::string_body> make_response(const http_response& r, unsigned version,
                                                bool keep_alive) {
  http::response<http::string_body> res{static_cast<http::status>(r.status), version};
  res.set(http::field::server, "presenced");
  if (r.status != 204) {
    res.set(http::field::content_type, r.content_type);
    res.body() = r.body;
  }
  if (r.retry_after_s > 0)
    res.set(http::field::retry_after, std::to_string(r.retry_after_s));
  if (!r.location.empty())
    res.set(http::field::location, r.location);
  res.keep_alive(keep_alive);
  res.prepare_payload();
  return res;
}

// --- WebSocket -----------------------------------------------------------------

class ws_session : public event_sink, public std::enable_shared_from_this<ws_session> {
public:
  ws_session(tcp::socket&& socket, server::impl& srv, std::optional<principal> who)
    : ws_(std::move(socket)), srv_(srv), who_(std::move(who)),
      signals_(static_cast<double>(srv.cfg.limits.signals_per_second)) {
  }

  ~ws_session() override {
    for (auto& [room, id] : topics_)
      srv_.events.unsubscribe({room, id}, this);
    srv_.metrics.sockets_open.fetch_sub(1, std::memory_order_relaxed);
    if (socket_actor_) {
      {
        std::lock_guard<std::mutex> guard{srv_.sockets_mtx};
        srv_.socket_actors.erase(socket_actor_.address());
      }
      caf::anon_send_exit(socket_actor_, caf::exit_reason::user_shutdown);
    }
  }

  void run(http::request<http::string_body> req) {
    srv_.metrics.sockets_open.fetch_add(1, std::memory_order_relaxed);
    // A socket silent for limits.ws_ping_interval_ms is pinged; one that
    // answers nothing within another interval is dropped (Beast pings at half
    // the idle timeout and fails the stream at the full one).
    auto timeouts = websocket::stream_base::timeout::suggested(beast::role_type::server);
    timeouts.idle_timeout = std::chrono::milliseconds{2 * srv_.cfg.limits.ws_ping_interval_ms};
    timeouts.keep_alive_pings = true;
    ws_.set_option(timeouts);
    ws_.set_option(websocket::stream_base::decorator(
      [](websocket::response_type& res) { res.set(http::field::server, "presenced"); }));
    ws_.read_message_max(static_cast<size_t>(srv_.cfg.limits.max_body_bytes));
    // A bounded kernel send buffer: what a reader has not taken stays in the
    // write queue, where it is coalesced and its age seen (limits.slow_reader_ms),
    // instead of megabytes the kernel would hold for a stalled peer.
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).socket().set_option(
      net::socket_base::send_buffer_size(ws_send_buffer_bytes), ignored);
    ws_.async_accept(req, beast::bind_front_handler(&ws_session::on_accept,
                                                    shared_from_this()));
  }

  /// Queues a text frame that is never coalesced; thread-safe.
  void send(std::string text) {
    deliver(std::make_shared<const std::string>(std::move(text)), nullptr);
  }

  void deliver(std::shared_ptr<const std::string> frame,
               std::shared_ptr<const std::string> topic) override {
    net::post(ws_.get_executor(), [self = shared_from_this(), f = std::move(frame),
                                   t = std::move(topic)]() mutable {
      self->enqueue(std::move(f), std::move(t));
    });
  }

  /// Closes with `code`; thread-safe.
  void close(websocket::close_code code) {
    net::post(ws_.get_executor(), [self = shared_from_this(), code] {
      self->close_now(code);
    });
  }

private:
  void on_accept(beast::error_code ec) {
    if (ec)
      return;
    {
      std::lock_guard<std::mutex> guard{srv_.sockets_mtx};
      srv_.sockets.insert(weak_from_this());
    }
    // The socket actor: receives this socket's events and its session's signal
    // replies, renders them once and posts the text to the socket's strand.
    auto fn = [](caf::event_based_actor* self,
                 std::weak_ptr<ws_session> ws) -> caf::behavior {
      auto watched = std::make_shared<caf::actor>();
      // The handle the socket reaches its session by (a stub when it lives
      // on another node), and which watch this is (a look-up again after an
      // unwatch or another watch is stale).
      auto target = std::make_shared<caf::actor>();
      auto generation = std::make_shared<uint64_t>(0);
      auto push = [ws](const json& j) {
        if (auto s = ws.lock())
          s->send(j.dump());
      };
      auto ended = [push, ws] {
        push({{"op", "error"},
              {"code", "session_not_found"},
              {"message", "the session ended: send hello to open a new one"}});
        if (auto s = ws.lock())
          s->session_ended();
      };
      keep_on_errors(self);
      actors::census::track(self, actors::census::kind::socket);
      self->set_down_handler([self, ended, watched, target, generation](caf::down_msg& dm) {
        if (!*watched || dm.source != watched->address())
          return; // a copy watched before
        *watched = nullptr;
        if (dm.reason == caf::exit_reason::normal) {
          ended(); // the session ended
          return;
        }
        // The copy went down with its node (stopped, failed, or handed the
        // session over): the session may live on elsewhere. Found again
        // through the handle the socket reaches it by, in a moment.
        self->delayed_send(self, rewatch_delay, watch_atom::value, *target, *generation);
      });
      return {
        [push](const intent_event& e) {
          push({{"op", "intent"}, {"intent", to_json(e.intent)}});
        },
        [push](const signal_reply& r) { // only changes arrive (quiet signals)
          if (r.changed)
            push({{"op", "ack"},
                  {"state", std::string{to_string(r.current)}},
                  {"heartbeat_ms", r.heartbeat_ms}});
        },
        // The session itself is watched, not the stub that reaches it on
        // another node (a stub never goes down).
        [self, target, generation](watch_atom, const caf::actor& session) {
          *target = session;
          self->send(self, watch_atom::value, session, ++*generation);
        },
        [self, watched, target, generation, ended](watch_atom, const caf::actor& session,
                                                   uint64_t gen) {
          if (gen != *generation)
            return; // unwatched or watching another since
          self->request(session, std::chrono::seconds{10}, locate_atom::value)
            .then(
              [self, watched, generation, gen](const caf::actor& real) {
                if (gen != *generation)
                  return;
                if (*watched)
                  self->demonitor(*watched);
                *watched = real;
                self->monitor(real);
              },
              [self, generation, gen, ended, session](caf::error& e) {
                if (gen != *generation)
                  return;
                if (actors::code_of(e) == actors::errc::session_not_found) {
                  ended(); // gone while it moved
                  return;
                }
                // Its node is down and may bring it back, or it is on its
                // way between nodes: looked up again in a moment.
                self->delayed_send(self, rewatch_delay, watch_atom::value, session, gen);
              });
        },
        [self, watched, generation](unwatch_atom, const caf::actor&) {
          ++*generation;
          if (*watched)
            self->demonitor(*watched);
          *watched = nullptr;
        },
        // Another socket resumed the session (one session, one socket).
        [ws](superseded_atom, const std::string& sid) {
          post_weak(ws, [sid](const std::shared_ptr<ws_session>& s) { s->taken_over(sid); });
        },
        // The client's `leave`: asked by this actor, so that the session sees
        // whether its socket (the holder) asks. Closed once it answered.
        [self, watched, generation, ws](leave_atom, const caf::actor& session,
                                        int64_t after_ms) {
          ++*generation;
          if (*watched)
            self->demonitor(*watched);
          *watched = nullptr;
          auto done = [ws](caf::error e) {
            post_weak(ws, [e](const std::shared_ptr<ws_session>& s) { s->left(e); });
          };
          self->request(session, request_timeout, leave_atom::value, after_ms)
            .then([done]() { done(caf::error{}); }, [done](caf::error& e) { done(e); });
        },
        [push](caf::error& e) {
          auto err = from_actor_error(e);
          push({{"op", "error"}, {"code", err.code}, {"message", err.message}});
        },
      };
    };
    socket_actor_ = srv_.node.system().spawn(fn, weak_from_this());
    {
      std::lock_guard<std::mutex> guard{srv_.sockets_mtx};
      srv_.socket_actors.insert(socket_actor_.address());
    }
    if (!who_) {
      // A socket that never authenticates is closed (1.1: 5 s after the upgrade).
      auth_timer_.expires_after(hello_token_timeout);
      auth_timer_.async_wait([weak = weak_from_this()](beast::error_code ec) {
        auto self = weak.lock();
        if (!self || ec || self->who_)
          return;
        self->srv_.metrics.ws_closed_policy.fetch_add(1, std::memory_order_relaxed);
        self->close_now(websocket::close_code::policy_error);
      });
    }
    do_read();
  }

  void do_read() {
    ws_.async_read(buffer_, beast::bind_front_handler(&ws_session::on_read,
                                                      shared_from_this()));
  }

  void on_read(beast::error_code ec, size_t) {
    if (ec) {
      if (ec == websocket::error::message_too_big)
        close_now(websocket::close_code::too_big);
      // The peer closed first (its code), or the connection just ended.
      count_close(ec == websocket::error::closed ? static_cast<unsigned>(ws_.reason().code)
                                                 : 1006u);
      forget();
      slow_timer_.cancel();
      return;
    }
    srv_.metrics.ws_frames_in.fetch_add(1, std::memory_order_relaxed);
    auto text = beast::buffers_to_string(buffer_.data());
    buffer_.consume(buffer_.size());
    if (!ws_.got_text())
      strike("invalid_frame", "binary frames are not accepted: send JSON text");
    else
      on_frame(text);
    if (!closing_)
      do_read();
  }

  void forget() {
    std::lock_guard<std::mutex> guard{srv_.sockets_mtx};
    srv_.sockets.erase(weak_from_this());
  }

  // The write queue (on the strand). The front entry may be in flight; every
  // entry behind it that carries a topic is listed in `unsent_`, so a newer
  // event of the topic replaces it instead of queueing behind it.
  void enqueue(std::shared_ptr<const std::string> text,
               std::shared_ptr<const std::string> topic) {
    if (closing_ || superseded_)
      return;
    auto now = std::chrono::steady_clock::now();
    if (topic && !topic->empty() && topic->front() == barrier_prefix) {
      // Never replaced, and the topic's later events queue behind it: its
      // unsent predecessor is no longer the one they replace.
      unsent_.erase(topic->substr(1));
      topic = nullptr;
    }
    if (topic) {
      if (auto i = unsent_.find(*topic); i != unsent_.end()) {
        i->second->frame = std::move(text);
        srv_.metrics.ws_frames_coalesced.fetch_add(1, std::memory_order_relaxed);
        return check_behind(now);
      }
    } else if (++plain_queued_ > max_queued_frames) {
      return close_slow("more than 4096 frames queued");
    }
    queue_.push_back(outgoing{std::move(text), topic, now});
    if (topic)
      unsent_.emplace(*topic, &queue_.back());
    if (!writing_)
      do_write();
    if (!slow_timer_armed_)
      arm_slow_timer(queue_.front().queued);
    check_behind(now);
  }

  // A frame that waited limits.slow_reader_ms unsent: the reader stays behind.
  void check_behind(std::chrono::steady_clock::time_point now) {
    if (!queue_.empty() && now - queue_.front().queued >= slow_reader_)
      close_slow("a frame waited limits.slow_reader_ms");
  }

  void arm_slow_timer(std::chrono::steady_clock::time_point since) {
    slow_timer_armed_ = true;
    slow_timer_.expires_at(since + slow_reader_);
    // Weakly held: a socket that is gone otherwise goes at once.
    slow_timer_.async_wait([weak = weak_from_this()](beast::error_code ec) {
      auto self = weak.lock();
      if (!self)
        return;
      self->slow_timer_armed_ = false;
      if (ec || self->closing_ || self->queue_.empty())
        return;
      auto now = std::chrono::steady_clock::now();
      self->check_behind(now);
      if (!self->closing_)
        self->arm_slow_timer(self->queue_.front().queued);
    });
  }

  void close_slow(const char* why) {
    if (superseded_) // a superseded socket whose peer does not read its error
      return close_now(taken_over_close);
    srv_.metrics.ws_closed_slow.fetch_add(1, std::memory_order_relaxed);
    // At most one line a second: a thousand sockets falling behind at once
    // must not flood the log (presence_ws_closed_slow_total counts them all).
    auto now = std::chrono::steady_clock::now().time_since_epoch().count();
    auto last = srv_.slow_logged_at.load(std::memory_order_relaxed);
    auto suppressed = srv_.slow_unlogged.fetch_add(1, std::memory_order_relaxed);
    if (now - last >= std::chrono::steady_clock::duration{std::chrono::seconds{1}}.count()
        && srv_.slow_logged_at.compare_exchange_strong(last, now)) {
      srv_.slow_unlogged.fetch_sub(suppressed + 1, std::memory_order_relaxed);
      spdlog::warn("closing a slow WebSocket reader (session {}): {}{}", session_id_, why,
                   suppressed > 0 ? fmt::format(" ({} more since the last such line)",
                                                suppressed)
                                  : std::string{});
    }
    close_now(websocket::close_code::try_again_later);
  }

  void do_write() {
    auto& front = queue_.front();
    // In flight from now on: not replaced any more (a barrier may have made a
    // later entry the topic's unsent one already).
    if (front.topic)
      if (auto i = unsent_.find(*front.topic); i != unsent_.end() && i->second == &front)
        unsent_.erase(i);
    writing_ = true;
    ws_.text(true);
    ws_.async_write(net::buffer(*front.frame),
                    beast::bind_front_handler(&ws_session::on_write,
                                              shared_from_this()));
  }

  void on_write(beast::error_code ec, size_t) {
    writing_ = false;
    if (ec) {
      drop_unsent();
      queue_.clear();
      plain_queued_ = 0;
      return;
    }
    srv_.metrics.ws_frames_out.fetch_add(1, std::memory_order_relaxed);
    if (!queue_.front().topic)
      --plain_queued_;
    queue_.pop_front();
    if (!queue_.empty())
      do_write();
    else if (close_after_write_)
      close_now(close_after_write_code_);
  }

  // Forgets every frame not yet handed to Beast (the in-flight one stays until
  // its write completes: its buffer is in use).
  void drop_unsent() {
    unsent_.clear();
    if (queue_.empty())
      return;
    queue_.erase(queue_.begin() + (writing_ ? 1 : 0), queue_.end());
    plain_queued_ = queue_.empty() || queue_.front().topic ? 0 : 1;
  }

  // Counts this socket's end once, under the code that ended it.
  void count_close(unsigned code) {
    if (close_counted_)
      return;
    close_counted_ = true;
    srv_.metrics.ws_closed[ws_close_slot(code)].fetch_add(1, std::memory_order_relaxed);
  }

  void close_now(websocket::close_code code) {
    if (closing_)
      return;
    closing_ = true;
    count_close(static_cast<unsigned>(code));
    drop_unsent();
    slow_timer_.cancel();
    ws_.async_close(code, [self = shared_from_this()](beast::error_code) {
      self->cut();
    });
    // A peer that does not read never answers the close: its connection is
    // cut after a grace (which also completes the close and the read above).
    close_timer_.expires_after(close_grace);
    close_timer_.async_wait([weak = weak_from_this()](beast::error_code ec) {
      if (auto self = weak.lock(); self && !ec)
        self->cut();
    });
  }

  void cut() {
    close_timer_.cancel();
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).socket().shutdown(tcp::socket::shutdown_both, ignored);
    beast::get_lowest_layer(ws_).socket().close(ignored);
  }

  void reply(const json& j) { enqueue(std::make_shared<const std::string>(j.dump()), nullptr); }

  void error(const std::string& code, const std::string& message) {
    reply({{"op", "error"}, {"code", code}, {"message", message}});
  }

  void strike(const std::string& code, const std::string& message) {
    error(code, message);
    if (++strikes_ >= max_strikes) {
      srv_.metrics.ws_closed_policy.fetch_add(1, std::memory_order_relaxed);
      close_now(websocket::close_code::policy_error);
    }
  }

  // Runs `f(self)` on this socket's strand if the socket still exists. Called on
  // a CAF worker, which keeps no reference afterwards: the last reference
  // released there destroyed the socket's Beast state off its I/O thread
  // (SIGSEGV in the websocket service at shutdown).
  template <class F>
  static void post_weak(const std::weak_ptr<ws_session>& weak, F f) {
    auto self = weak.lock();
    if (!self)
      return;
    auto ex = self->ws_.get_executor();
    net::post(ex, [self = std::move(self), f = std::move(f)]() mutable { f(self); });
  }

  // Posts a completion from a CAF worker back to this socket's strand.
  template <class T, class F>
  std::function<void(caf::expected<T>)> on_strand(F f) {
    std::weak_ptr<ws_session> weak = shared_from_this();
    return [weak, f](caf::expected<T> r) mutable {
      post_weak(weak, [f, r = std::move(r)](auto&) mutable { f(std::move(r)); });
    };
  }

  void fail_with(const caf::error& e) {
    auto err = from_actor_error(e);
    error(err.code, err.message);
  }

  bool take_token() {
    if (!signals_.take())
      return false;
    over_limit_ = 0;
    return true;
  }

  void on_frame(const std::string& text) {
    api_error err;
    auto op = parse_ws_op(text, err);
    if (!op)
      return strike(err.code, err.message);
    on_op(std::move(*op));
  }

  void on_op(ws_op op) {
    if (superseded_)
      return; // closing: its session lives on another socket
    if (resuming_) {
      // The hello's resume is on its way: later frames wait for its answer (a
      // second hello then finds this socket carrying a session).
      if (waiting_ops_.size() >= max_frames_before_welcome)
        return strike("hello_pending", "wait for 'welcome' before sending more frames");
      waiting_ops_.push_back(std::move(op));
      return;
    }
    if (!who_) {
      // Upgraded without a token (1.1): only a `hello` carrying one counts.
      auto* h = std::get_if<ws_hello>(&op);
      if (h == nullptr || h->token.empty())
        return error("unauthorized", "send hello {token} first");
    }
    if (!session_) {
      auto* h = std::get_if<ws_hello>(&op);
      if (h == nullptr)
        return strike("hello_required", "the first frame must be 'hello'");
      return on_hello(*h);
    }
    std::visit([this](auto& x) { on_bound(x); }, op);
  }

  void on_bound(ws_hello&) { strike("invalid_frame", "this socket already carries a session"); }

  void on_bound(ws_signal& s) {
    if (!take_token()) {
      if (++over_limit_ > srv_.cfg.limits.signals_per_second) {
        srv_.metrics.ws_closed_policy.fetch_add(1, std::memory_order_relaxed);
        error("rate_limited", "too many signals: closing");
        return close_now(websocket::close_code::policy_error);
      }
      return error("rate_limited", "more than limits.signals_per_second signals");
    }
    strikes_ = 0;
    // The hot path: the session answers the socket actor, which acks only
    // a change. No requester actor and no timer per signal.
    caf::send_as(socket_actor_, session_, signal_atom::value, s.signal, quiet_atom::value);
  }

  void on_bound(ws_subscription& s) {
    strikes_ = 0;
    if (!s.users.empty() && who_->role == role::guest)
      return error("forbidden", "guests may subscribe to rooms only");
    return s.subscribe ? subscribe(s.users, s.rooms) : unsubscribe(s.users, s.rooms);
  }

  void on_bound(ws_room_op& r) {
    strikes_ = 0;
    auto done = on_strand<room_view>([this, room = r.room, join = r.join](auto v) {
      if (!v)
        return fail_with(v.error());
      if (join)
        subscribe({}, {room});
      else
        unsubscribe({}, {room});
    });
    if (r.join)
      return ask<room_view>(srv_.node.system(), session_, done, join_atom::value, r.room,
                            r.visible.value_or(who_->role != role::guest));
    ask<room_view>(srv_.node.system(), session_, done, leave_room_atom::value, r.room);
  }

  void on_bound(ws_intent& i) {
    strikes_ = 0;
    if (who_->role == role::guest)
      return error("forbidden", "guests may not create intents");
    i.spec.from_user = who_->user_id;
    auto created = srv_.node.router().create_intent(std::move(i.spec));
    if (!created)
      return fail_with(created.error());
    // the sender's sockets get the `intent` event
  }

  void on_bound(ws_intent_reply& r) {
    strikes_ = 0;
    auto h = srv_.node.router().intent(r.intent_id);
    if (!h)
      return error("intent_not_found", "no such intent");
    auto done = on_strand<intent_view>([this](auto v) {
      if (!v)
        fail_with(v.error());
    });
    if (r.accept)
      return ask<intent_view>(srv_.node.system(), h, done, accept_atom::value,
                              who_->user_id);
    ask<intent_view>(srv_.node.system(), h, done, decline_atom::value, who_->user_id);
  }

  void on_bound(ws_leave& l) {
    strikes_ = 0;
    // Closed once the session confirms (left()): a client that sees the close
    // knows the session is gone (or, with after_ms, will be unless resumed).
    caf::anon_send(socket_actor_, leave_atom::value, session_, l.after_ms);
    session_ = nullptr;
  }

  // The session answered this socket's `leave`.
  void left(const caf::error& e) {
    if (code_of(e) == errc::taken_over)
      return supersede(); // another socket holds it: it goes on there
    close_after_write(websocket::close_code::normal);
  }

  // Closes with `code` once every queued frame is written.
  void close_after_write(websocket::close_code code) {
    close_after_write_ = true;
    close_after_write_code_ = code;
    if (queue_.empty())
      close_now(code);
  }

  // Another socket resumed this socket's session `sid` (on the strand).
  void taken_over(const std::string& sid) {
    if (closing_ || superseded_ || sid != session_id_)
      return; // closing already, or a session this socket no longer carries
    supersede();
  }

  // This socket no longer holds its session: the client is told, nothing it
  // sends acts any more, and the socket closes (4409) after the error frame.
  // The session is not ended: it lives on with the socket that resumed it.
  void supersede() {
    if (superseded_)
      return;
    if (session_)
      caf::anon_send(socket_actor_, unwatch_atom::value, session_);
    session_ = nullptr;
    session_id_.clear();
    waiting_ops_.clear();
    drop_unsent(); // the error goes out first, not behind stale events
    error("session_taken_over", "this session was resumed on another connection");
    superseded_ = true; // nothing is queued behind the error
    close_after_write(taken_over_close);
  }

  void on_hello(ws_hello& h) {
    if (!h.token.empty()) {
      std::string why;
      auto who = srv_.auth.verify(h.token, srv_.node.now_ms() / 1000, &why);
      if (!who)
        return error("unauthorized", why);
      who_ = std::move(*who);
      auth_timer_.cancel();
    }
    if (h.session_id.empty()) {
      auto opened = srv_.node.router().open_session(
        {who_->user_id, h.device, h.signal.value_or(signal_kind::active), {}, {}});
      return bind(opened.handle, opened.session_id, opened.resume_token,
                  opened.heartbeat_ms, false);
    }
    auto sh = srv_.node.router().session(h.session_id);
    if (!sh)
      return error("session_not_found", "no such session: send hello without session_id");
    resuming_ = true;
    // Resuming without a signal claims nothing: the session keeps its state.
    ask<session_view>(srv_.node.system(), sh,
                      on_strand<session_view>([this, sh, sid = h.session_id,
                                               token = h.resume_token,
                                               sig = h.signal](auto r) {
                        resuming_ = false;
                        if (!r)
                          fail_with(r.error());
                        else if (r->user_id != who_->user_id)
                          error("forbidden", "the session belongs to another user");
                        else {
                          bind(sh, sid, token, r->heartbeat_ms, true);
                          if (sig)
                            caf::anon_send(sh, signal_atom::value, *sig);
                        }
                        replay_waiting();
                      }),
                      resume_atom::value, h.resume_token);
  }

  // The frames that arrived while a resume was pending, in their order.
  void replay_waiting() {
    std::deque<ws_op> ops;
    ops.swap(waiting_ops_);
    for (auto& op : ops) {
      if (closing_ || resuming_) {
        waiting_ops_.push_back(std::move(op));
        continue;
      }
      on_op(std::move(op));
    }
  }

  void bind(caf::actor h, const std::string& sid, const std::string& token,
            int64_t heartbeat_ms, bool resumed) {
    session_ = std::move(h);
    session_id_ = sid;
    // This socket holds the session now; one that held it before is told.
    // Sent as the socket's actor, so it reaches the session before this
    // socket's signals (same sender, same path) and they count.
    caf::send_as(socket_actor_, session_, attach_atom::value, socket_actor_);
    caf::anon_send(socket_actor_, watch_atom::value, session_);
    // Welcome once the user knows this socket: an intent delivered to the user
    // right after the client saw `welcome` reaches the socket. Frames that
    // arrive meanwhile wait (as during a resume).
    resuming_ = true;
    std::weak_ptr<ws_session> weak = shared_from_this();
    auto welcome = json{{"op", "welcome"},
                        {"session_id", sid},
                        {"user_id", who_->user_id},
                        {"resume_token", token},
                        {"heartbeat_ms", heartbeat_ms},
                        {"server_time", srv_.node.now_ms()},
                        {"resumed", resumed}};
    ask_unit(srv_.node.system(), srv_.node.router().user(who_->user_id),
             [weak, welcome](caf::error e) mutable {
               if (e)
                 spdlog::warn("socket of session {} not registered with its user: {}",
                              welcome["session_id"].get<std::string>(), to_string(e));
               post_weak(weak, [welcome](const std::shared_ptr<ws_session>& self) {
                 self->resuming_ = false;
                 self->reply(welcome);
                 self->replay_waiting();
               });
             },
             inbox_atom::value, socket_actor_);
  }

  // Subscribes through the node's fan-out and answers `subscribed` with every
  // snapshot. Events of a topic may reach the socket before the answer (when
  // several topics are gathered); their `seq` orders them.
  void subscribe(const std::vector<std::string>& users,
                 const std::vector<std::string>& rooms) {
    struct gather {
      json users = json::array();
      json rooms = json::array();
      json failed = json::array(); ///< topics whose entity did not answer
      size_t pending = 0;
    };
    auto g = std::make_shared<gather>();
    g->pending = users.size() + rooms.size();
    if (g->pending == 0)
      return reply({{"op", "subscribed"}, {"users", g->users}, {"rooms", g->rooms}});
    size_t fresh = 0;
    for (auto* list : {&users, &rooms})
      for (auto& id : *list)
        fresh += topics_.count({list == &rooms, id}) == 0 ? 1 : 0;
    if (topics_.size() + fresh > max_topics_per_socket)
      return error("too_many_subscriptions",
                   "a socket receives at most 10000 users and rooms together");
    // The answer comes back weakly: a socket the gateway destroyed meanwhile
    // (it stopped) is not kept alive by the fan-out.
    std::weak_ptr<ws_session> weak = shared_from_this();
    auto add = [this, weak, g](bool room, const std::string& id) {
      topic_ref t{room, id};
      topics_.insert({room, id});
      srv_.events.subscribe(t, shared_from_this(), [weak, g, room, id](std::string snapshot) {
        auto self = weak.lock();
        if (!self)
          return;
        net::post(self->ws_.get_executor(), [self, g, room, id, snapshot] {
          if (snapshot.empty()) {
            // Not subscribed: the client is told, and may subscribe again.
            self->topics_.erase({room, id});
            g->failed.push_back(json{{room ? "room" : "user", id}});
          } else {
            (room ? g->rooms : g->users).push_back(json::parse(snapshot));
          }
          if (--g->pending > 0)
            return;
          self->reply({{"op", "subscribed"}, {"users", g->users}, {"rooms", g->rooms}});
          if (!g->failed.empty())
            self->reply({{"op", "error"},
                         {"code", "unavailable"},
                         {"message", "these topics could not be subscribed to now; retry"},
                         {"topics", g->failed}});
        });
      });
    };
    for (auto& u : users)
      add(false, u);
    for (auto& r : rooms)
      add(true, r);
  }

  void unsubscribe(const std::vector<std::string>& users,
                   const std::vector<std::string>& rooms) {
    auto drop = [this](bool room, const std::string& id) {
      srv_.events.unsubscribe({room, id}, this);
      topics_.erase({room, id});
    };
    for (auto& u : users)
      drop(false, u);
    for (auto& r : rooms)
      drop(true, r);
  }

  websocket::stream<beast::tcp_stream> ws_;
  beast::flat_buffer buffer_;
  server::impl& srv_;
  std::optional<principal> who_; ///< none until a hello's token (1.1)
  net::steady_timer auth_timer_{ws_.get_executor()};
  caf::actor socket_actor_;
  caf::actor session_;
  std::string session_id_;
  struct outgoing {
    std::shared_ptr<const std::string> frame;
    std::shared_ptr<const std::string> topic; ///< null: never coalesced
    std::chrono::steady_clock::time_point queued;
  };
  std::deque<outgoing> queue_; ///< front in flight while writing_
  /// Unsent entries of `queue_` by topic (deque ends keep references stable).
  std::unordered_map<std::string, outgoing*> unsent_;
  size_t plain_queued_ = 0; ///< entries of `queue_` without a topic
  bool writing_ = false;
  std::chrono::milliseconds slow_reader_{srv_.cfg.limits.slow_reader_ms};
  net::steady_timer slow_timer_{ws_.get_executor()};
  bool slow_timer_armed_ = false;
  net::steady_timer close_timer_{ws_.get_executor()};
  /// What this socket receives through the fan-out: (is a room, id).
  std::set<std::pair<bool, std::string>> topics_;
  bool closing_ = false;
  bool close_counted_ = false; ///< presence_ws_closed_total has this socket
  bool close_after_write_ = false;
  websocket::close_code close_after_write_code_ = websocket::close_code::normal;
  bool superseded_ = false; ///< another socket resumed the session: closing
  bool resuming_ = false;                 ///< a hello's resume awaits its answer
  std::deque<ws_op> waiting_ops_; ///< frames received meanwhile
  int strikes_ = 0;
  token_bucket signals_;
  int64_t over_limit_ = 0;

public:
  void shutdown() { close(websocket::close_code::going_away); }

  /// The session expired under this socket: accept a new hello. Thread-safe.
  void session_ended() {
    net::post(ws_.get_executor(), [self = shared_from_this()] {
      self->session_ = nullptr;
      self->session_id_.clear();
    });
  }
};

// --- HTTP ------------------------------------------------------------------------

class http_session : public std::enable_shared_from_this<http_session> {
public:
  http_session(tcp::socket&& socket, server::impl& srv)
    : stream_(std::move(socket)), srv_(srv) {
    srv_.metrics.connections.fetch_add(1, std::memory_order_relaxed);
  }

  ~http_session() { srv_.metrics.connections.fetch_sub(1, std::memory_order_relaxed); }

  void run() {
    net::dispatch(stream_.get_executor(),
                  beast::bind_front_handler(&http_session::start, shared_from_this()));
  }

private:
  void start() {
    if (srv_.metrics.connections.load() + srv_.metrics.sockets_open.load()
        > srv_.cfg.limits.max_connections) {
      srv_.metrics.rejected_connections.fetch_add(1, std::memory_order_relaxed);
      return write(error_response({503, "unavailable", "too many connections"}), 11,
                   false);
    }
    do_read();
  }

  void do_read() {
    parser_.emplace();
    parser_->header_limit(max_header_bytes);
    parser_->body_limit(static_cast<uint64_t>(srv_.cfg.limits.max_body_bytes));
    stream_.expires_after(http_idle_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&http_session::on_read,
                                               shared_from_this()));
  }

  void on_read(beast::error_code ec, size_t) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout)
      return close();
    if (ec == http::error::body_limit)
      return write(error_response({413, "payload_too_large",
                                   "the body is over limits.max_body_bytes ("
                                     + std::to_string(srv_.cfg.limits.max_body_bytes)
                                     + " bytes)"}),
                   11, false);
    if (ec == http::error::header_limit)
      return write(error_response({431, "headers_too_large", "headers over 16 KiB"}), 11,
                   false);
    if (ec) {
      if (ec != net::error::operation_aborted && ec != net::error::connection_reset)
        write(error_response({400, "bad_request", "malformed HTTP request"}), 11, false);
      return;
    }
    auto req = parser_->release();
    http_request hr;
    hr.method = std::string{req.method_string()};
    split_target(std::string{req.target()}, hr.path, hr.query);
    auto header = [&](http::field f) { return std::string{req[f]}; };
    hr.authorization = header(http::field::authorization);
    hr.x_user = std::string{req["X-User"]};
    hr.x_role = std::string{req["X-Role"]};
    if (websocket::is_upgrade(req)) {
      if (hr.path != "/v1/ws")
        return write(error_response({404, "not_found", "WebSocket lives at /v1/ws"}),
                     req.version(), false);
      if (!srv_.node.ready())
        return write(error_response({503, "unavailable",
                                     "the node is recovering its state; retry"}),
                     req.version(), false);
      std::string why;
      auto token = hr.query.count("token") ? hr.query["token"] : std::string{};
      // No credential at all: the token may come in `hello` (1.1).
      const bool bare = hr.authorization.empty() && token.empty() && hr.x_user.empty();
      auto who = bare ? std::nullopt
                      : srv_.auth.authenticate(hr.authorization, hr.x_user, hr.x_role,
                                               token, srv_.node.now_ms() / 1000, &why);
      if (!who && !bare)
        return write(error_response({401, "unauthorized", why}), req.version(), false);
      stream_.expires_never();
      std::make_shared<ws_session>(stream_.release_socket(), srv_, std::move(who))
        ->run(std::move(req));
      return;
    }
    srv_.metrics.http_requests.fetch_add(1, std::memory_order_relaxed);
    if (hr.method == "POST" && hr.path.size() > 7
        && hr.path.compare(hr.path.size() - 7, 7, "/signal") == 0 && !signals_.take())
      return write(error_response({429, "rate_limited",
                                   "more than limits.signals_per_second signals on "
                                   "this connection"}),
                   req.version(), req.keep_alive());
    hr.body = std::move(req.body());
    auto version = req.version();
    auto keep_alive = req.keep_alive();
    auto route = route_label(hr.method, hr.path);
    auto started = std::chrono::steady_clock::now();
    // While the actors answer, the server holds the session; the answer's
    // callback (kept by CAF, maybe past the gateway's stop) holds it weakly, so
    // no session outlives the io_context its socket belongs to.
    auto me = shared_from_this();
    {
      std::lock_guard<std::mutex> guard{srv_.awaiting_mtx};
      srv_.awaiting.insert(me);
    }
    std::weak_ptr<http_session> weak = me;
    srv_.api_.handle(hr, [weak, version, keep_alive, route, started](http_response resp) {
      auto self = weak.lock();
      if (!self)
        return; // the gateway stopped meanwhile
      {
        std::lock_guard<std::mutex> guard{self->srv_.awaiting_mtx};
        self->srv_.awaiting.erase(self);
      }
      self->srv_.http.record(
        route, resp.status,
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
      net::post(self->stream_.get_executor(),
                [self, resp = std::move(resp), version, keep_alive] {
                  self->write(resp, version, keep_alive);
                });
    });
  }

  void write(const http_response& r, unsigned version, bool keep_alive) {
    auto res = std::make_shared<http::response<http::string_body>>(
      make_response(r, version, keep_alive));
    http::async_write(stream_, *res,
                      [self = shared_from_this(), res](beast::error_code ec, size_t) {
                        if (ec || !res->keep_alive())
                          return self->close();
                        self->do_read();
                      });
  }

  void close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  server::impl& srv_;
  token_bucket signals_{static_cast<double>(srv_.cfg.limits.signals_per_second)};
};

} // namespace

void server::impl::do_accept() {
  acceptor.async_accept(net::make_strand(ioc), [this](beast::error_code ec,
                                                      tcp::socket socket) {
    if (ec) {
      if (ec == net::error::operation_aborted)
        return;
    } else {
      std::make_shared<http_session>(std::move(socket), *this)->run();
    }
    do_accept();
  });
}

server::server(actors::node& n, const config::settings& cfg)
  : impl_(std::make_unique<impl>(n, cfg, metrics_)) {
  impl_->api_.metrics_text = [this] {
    return render_metrics(impl_->node, metrics_, impl_->http);
  };
}

size_t server::fanout_shards() const {
  return impl_ ? impl_->events.shard_count() : 0;
}

server::~server() {
  stop();
  impl_.reset();
}

uint16_t server::start() {
  auto& cfg = impl_->cfg;
  beast::error_code ec;
  auto address = net::ip::make_address(cfg.node.bind, ec);
  if (ec)
    throw std::runtime_error("node.bind: '" + cfg.node.bind + "' is not an IP address");
  tcp::endpoint ep{address, static_cast<unsigned short>(cfg.node.http_port)};
  auto& acc = impl_->acceptor;
  acc.open(ep.protocol(), ec);
  if (!ec)
    acc.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec)
    acc.bind(ep, ec);
  if (!ec)
    acc.listen(net::socket_base::max_listen_connections, ec);
  if (ec)
    throw std::runtime_error("cannot listen on " + cfg.node.bind + ":"
                             + std::to_string(cfg.node.http_port) + ": " + ec.message());
  impl_->do_accept();
  for (int64_t i = 0; i < cfg.node.io_threads; ++i)
    impl_->threads.emplace_back([this] { impl_->ioc.run(); });
  return acc.local_endpoint().port();
}

void server::stop() {
  if (!impl_)
    return;
  if (impl_->threads.empty()) {
    impl_.reset();
    return;
  }
  net::post(impl_->ioc, [this] {
    beast::error_code ec;
    impl_->acceptor.close(ec);
  });
  std::vector<std::shared_ptr<ws_session>> open;
  {
    std::lock_guard<std::mutex> guard{impl_->sockets_mtx};
    for (auto& w : impl_->sockets)
      if (auto s = w.lock())
        open.push_back(std::move(s));
  }
  spdlog::info("closing {} WebSockets (going away)", open.size());
  for (auto& s : open)
    s->shutdown();
  open.clear();
  // Give the close frames a moment, then stop the loop.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{2};
  while (std::chrono::steady_clock::now() < deadline
         && impl_->metrics.sockets_open.load() > 0)
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  impl_->ioc.stop();
  for (auto& t : impl_->threads)
    t.join();
  impl_->threads.clear();
  impl_->events.stop();
  {
    // Requests still waiting for the actors: their sessions go now, while the
    // io_context they belong to exists (the answers, if any, find them gone).
    std::set<std::shared_ptr<http_session>> waiting;
    {
      std::lock_guard<std::mutex> guard{impl_->awaiting_mtx};
      waiting.swap(impl_->awaiting);
    }
  }
  // The sockets' actors stop now (the node waits for every actor to end). The
  // io_context stays until the server is destroyed, after the actors are done:
  // its pending handlers (peers that never answered the close) hold sessions,
  // and a session released on a CAF worker after the io_context was gone
  // crashed in Beast's websocket service.
  std::set<caf::actor_addr> actors;
  {
    std::lock_guard<std::mutex> guard{impl_->sockets_mtx};
    actors.swap(impl_->socket_actors);
  }
  for (auto& a : actors)
    if (auto h = caf::actor_cast<caf::actor>(a))
      caf::anon_send_exit(h, caf::exit_reason::user_shutdown);
}

} // namespace presence::gateway
