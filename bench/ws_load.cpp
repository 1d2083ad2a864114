// Load generator for the gateway: starts a presenced node (and, for comparison,
// a bare Beast WebSocket echo server) on loopback, opens N WebSocket sessions
// (one per user), keeps W watcher sockets subscribed to the users, signals at a
// paced rate with a mix of state changes, and prints: signals/s sustained, the
// node's CPU per signal, resident memory per connected session, and the
// latency from a state-changing signal to the watcher's event (p50/p99/p99.9).
//
//   ws_load [--sessions N] [--watchers W] [--rate R] [--seconds S]
//           [--node-flag --<section>.<key>=<value>]...
#include "launch.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <memory>
#include <poll.h>
#include <sstream>
#include <string>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using json = nlohmann::json;
using clk = std::chrono::steady_clock;
using presence::bench::child;
using presence::bench::cpu_seconds;
using presence::bench::rss_mib;
using presence::bench::spawn;
using presence::bench::stop;

namespace {

// --- process helpers -------------------------------------------------------------

// --- the echo server (the ceiling) -----------------------------------------------

class echo_session : public std::enable_shared_from_this<echo_session> {
public:
  explicit echo_session(tcp::socket s) : ws_(std::move(s)) {}
  void run() {
    ws_.async_accept([self = shared_from_this()](beast::error_code ec) {
      if (!ec)
        self->read();
    });
  }

private:
  void read() {
    ws_.async_read(buf_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec)
        return;
      self->ws_.text(true);
      self->ws_.async_write(self->buf_.data(),
                            [self](beast::error_code ec2, size_t) {
                              self->buf_.consume(self->buf_.size());
                              if (!ec2)
                                self->read();
                            });
    });
  }
  websocket::stream<beast::tcp_stream> ws_;
  beast::flat_buffer buf_;
};

int serve_echo() {
  net::io_context ioc{1};
  tcp::acceptor acc{ioc, {net::ip::make_address("127.0.0.1"), 0}};
  std::printf("echo listening on 127.0.0.1:%u\n", acc.local_endpoint().port());
  std::fflush(stdout);
  std::function<void()> accept = [&] {
    acc.async_accept([&](beast::error_code ec, tcp::socket s) {
      if (!ec)
        std::make_shared<echo_session>(std::move(s))->run();
      accept();
    });
  };
  accept();
  net::signal_set term{ioc, SIGTERM};
  term.async_wait([&](auto, int) { ioc.stop(); });
  ioc.run();
  return 0;
}

// --- the client ------------------------------------------------------------------

struct stats {
  uint64_t sent = 0;
  uint64_t frames_in = 0;
  std::vector<double> latencies_ms;
};

class conn : public std::enable_shared_from_this<conn> {
public:
  conn(net::io_context& ioc, stats& st, std::string user)
    : ws_(net::make_strand(ioc)), st_(st), user_(std::move(user)) {}

  void start(uint16_t port, std::function<void()> on_ready, size_t index = 0) {
    on_ready_ = std::move(on_ready);
    // Spread connections over source addresses 127.0.0.1-8: one address has
    // only ~28k ephemeral ports.
    auto& sock = beast::get_lowest_layer(ws_).socket();
    beast::error_code bind_ec;
    sock.open(tcp::v4(), bind_ec);
    net::ip::address_v4::bytes_type src{127, 0, 0, static_cast<unsigned char>(1 + index % 8)};
    sock.bind(tcp::endpoint{net::ip::address_v4{src}, 0}, bind_ec);
    beast::get_lowest_layer(ws_).async_connect(
      tcp::endpoint{net::ip::make_address("127.0.0.1"), port},
      [self = shared_from_this()](beast::error_code ec) {
        if (ec)
          return self->fail("connect", ec);
        self->ws_.set_option(websocket::stream_base::decorator(
          [u = self->user_](websocket::request_type& r) { r.set("X-User", u); }));
        self->ws_.async_handshake("127.0.0.1", "/v1/ws",
                                  [self](beast::error_code ec2) {
                                    if (ec2)
                                      return self->fail("handshake", ec2);
                                    self->read();
                                    self->on_open();
                                  });
      });
  }

  void send(std::string text) {
    queue_.push_back(std::move(text));
    if (queue_.size() == 1)
      write();
  }

  /// Frames of `op` are handed to this callback (watchers measure latency).
  std::function<void(const json&)> on_frame;
  std::function<void()> on_open = [self = this] { self->ready(); };

  void ready() {
    if (on_ready_) {
      auto f = std::move(on_ready_);
      on_ready_ = nullptr;
      f();
    }
  }

  const std::string& user() const { return user_; }

private:
  void fail(const char* what, beast::error_code ec) {
    std::fprintf(stderr, "%s %s: %s\n", user_.c_str(), what, ec.message().c_str());
  }
  void read() {
    ws_.async_read(buf_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec)
        return;
      ++self->st_.frames_in;
      if (self->on_frame) {
        auto j = json::parse(beast::buffers_to_string(self->buf_.data()), nullptr, false);
        self->on_frame(j);
      }
      self->buf_.consume(self->buf_.size());
      self->read();
    });
  }
  void write() {
    ws_.text(true);
    ws_.async_write(net::buffer(queue_.front()),
                    [self = shared_from_this()](beast::error_code ec, size_t) {
                      if (ec)
                        return;
                      self->queue_.pop_front();
                      if (!self->queue_.empty())
                        self->write();
                    });
  }
  websocket::stream<beast::tcp_stream> ws_;
  beast::flat_buffer buf_;
  std::deque<std::string> queue_;
  stats& st_;
  std::string user_;
  std::function<void()> on_ready_;
};

struct result {
  double signals_per_s = 0;
  double cpu_us_per_signal = 0;
  double rss_per_session_bytes = 0;
  std::vector<double> latencies_ms;
};

double percentile(std::vector<double> xs, double q) {
  if (xs.empty())
    return 0;
  std::sort(xs.begin(), xs.end());
  return xs[std::min(xs.size() - 1, static_cast<size_t>(q * static_cast<double>(xs.size())))];
}

// Runs one load against `target`. With `echo`, frames are echoed (no hello, no
// watchers): the ceiling of the socket path on this machine.
result run_load(const child& target, size_t sessions, size_t watchers, double rate,
                double seconds, bool echo) {
  net::io_context ioc{1};
  stats st;
  std::vector<std::shared_ptr<conn>> conns, watch;
  auto rss0 = rss_mib(target.pid);
  size_t ready = 0;
  std::vector<clk::time_point> toggled_at(sessions);
  std::vector<bool> toggled(sessions, false);
  for (size_t i = 0; i < sessions; ++i) {
    auto c = std::make_shared<conn>(ioc, st, "u" + std::to_string(i));
    if (!echo)
      c->on_open = [c] { c->send(R"({"op":"hello","device":"load"})"); };
    c->on_frame = [c, &ready, echo](const json& j) {
      if (echo || (j.is_object() && j.value("op", "") == "welcome"))
        c->ready();
    };
    if (echo)
      c->on_open = [c] { c->ready(); };
    c->start(target.port, [&ready] { ++ready; }, i);
    conns.push_back(c);
  }
  for (size_t w = 0; w < watchers && !echo; ++w) {
    auto c = std::make_shared<conn>(ioc, st, "watcher" + std::to_string(w));
    c->on_open = [c, w, sessions, watchers] {
      c->send(R"({"op":"hello"})");
      json users = json::array();
      for (size_t i = w; i < sessions; i += watchers)
        users.push_back("u" + std::to_string(i));
      c->send(json{{"op", "subscribe"}, {"users", users}}.dump());
    };
    c->on_frame = [c, &st, &toggled_at, &toggled](const json& j) {
      if (!j.is_object())
        return;
      auto op = j.value("op", "");
      if (op == "subscribed")
        c->ready();
      if (op != "presence")
        return;
      auto uid = j.value("user_id", "");
      if (uid.size() < 2 || uid[0] != 'u')
        return;
      auto i = static_cast<size_t>(std::strtoul(uid.c_str() + 1, nullptr, 10));
      if (i < toggled.size() && toggled[i]) {
        toggled[i] = false;
        st.latencies_ms.push_back(
          std::chrono::duration<double, std::milli>(clk::now() - toggled_at[i]).count());
      }
    };
    c->start(target.port, [&ready] { ++ready; });
    watch.push_back(c);
  }
  auto want = conns.size() + watch.size();
  auto deadline = clk::now() + std::chrono::seconds{120};
  while (ready < want && clk::now() < deadline)
    ioc.run_for(std::chrono::milliseconds{50});
  if (ready < want)
    std::fprintf(stderr, "only %zu of %zu sockets ready\n", ready, want);
  ioc.run_for(std::chrono::milliseconds{500});
  result res;
  res.rss_per_session_bytes = (rss_mib(target.pid) - rss0) * 1024 * 1024
                              / static_cast<double>(sessions);

  // Paced sending: every 5 ms, rate/200 signals round-robin. One in ten is a
  // toggle between background and active: a change that watchers see.
  auto cpu0 = cpu_seconds(target.pid);
  auto start = clk::now();
  net::steady_timer timer{ioc};
  size_t next = 0;
  uint64_t tick = 0;
  std::vector<bool> away(sessions, false);
  std::function<void()> pace = [&] {
    ++tick;
    auto due = static_cast<uint64_t>(rate * 0.005 * static_cast<double>(tick));
    while (st.sent < due) {
      auto i = next++ % sessions;
      std::string frame;
      if (echo) {
        frame = R"({"op":"signal","signal":"active"})";
      } else if (st.sent % 10 == 0 && !toggled[i]) {
        away[i] = !away[i];
        frame = away[i] ? R"({"op":"signal","signal":"background"})"
                        : R"({"op":"signal","signal":"active"})";
        toggled[i] = true;
        toggled_at[i] = clk::now();
      } else {
        frame = away[i] ? R"({"op":"signal","signal":"background"})"
                        : R"({"op":"signal","signal":"active"})";
      }
      conns[i]->send(std::move(frame));
      ++st.sent;
    }
    if (clk::now() - start < std::chrono::duration<double>(seconds)) {
      timer.expires_at(start + std::chrono::microseconds{5000 * (tick + 1)});
      timer.async_wait([&](beast::error_code) { pace(); });
    }
  };
  pace();
  ioc.run_for(std::chrono::duration_cast<clk::duration>(
    std::chrono::duration<double>(seconds + 1.0)));
  auto elapsed = std::chrono::duration<double>(clk::now() - start).count() - 1.0;
  auto cpu = cpu_seconds(target.pid) - cpu0;
  res.signals_per_s = static_cast<double>(st.sent) / elapsed;
  res.cpu_us_per_signal = cpu * 1e6 / static_cast<double>(st.sent);
  res.latencies_ms = st.latencies_ms;
  return res;
}

} // namespace

int main(int argc, char** argv) {
  // Room for tens of thousands of sockets on both sides (children inherit it).
  rlimit lim{};
  getrlimit(RLIMIT_NOFILE, &lim);
  rlimit want{std::max<rlim_t>(lim.rlim_cur, 262144), std::max<rlim_t>(lim.rlim_max, 262144)};
  if (setrlimit(RLIMIT_NOFILE, &want) != 0) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
  if (argc == 2 && std::strcmp(argv[1], "--serve-echo") == 0)
    return serve_echo();
  size_t sessions = 10000, watchers = 50;
  double rate = 20000, seconds = 10;
  std::vector<std::string> node_flags;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--sessions"))
      sessions = std::stoul(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--watchers"))
      watchers = std::stoul(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--rate"))
      rate = std::stod(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--seconds"))
      seconds = std::stod(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--node-flag"))
      node_flags.push_back(argv[i + 1]); // e.g. --node.worker_threads=1
    else {
      std::fprintf(stderr, "unknown argument %s\n", argv[i]);
      return 2;
    }
  }
  std::string self = argv[0];
  auto dir = self.substr(0, self.rfind('/'));
  auto presenced = dir + "/../programs/presenced";
  char data_dir[] = "/tmp/ws-load-XXXXXX";
  mkdtemp(data_dir);
  std::vector<std::string> args = {presenced, "--node.http_port=0",
                                   std::string{"--node.data_dir="} + data_dir,
                                   "--node.cluster_port=0",
                                   "--limits.max_connections=1000000",
                                   "--limits.signals_per_second=1000"};
  args.insert(args.end(), node_flags.begin(), node_flags.end());
  auto node = spawn(args, "http listening on 127.0.0.1", "] ready");
  auto r = run_load(node, sessions, watchers, rate, seconds, false);
  stop(node);
  auto echo = spawn({self, "--serve-echo"}, "echo listening on 127.0.0.1");
  auto e = run_load(echo, sessions, 0, rate, seconds, true);
  stop(echo);
  std::printf("ws_load: %zu sessions (1 per user), %zu watchers, paced at %.0f signals/s "
              "for %.0f s, 1 in 10 a state change\n",
              sessions, watchers, rate, seconds);
  std::printf("  presenced: %.0f signals/s sent, %.1f us CPU per signal, %.0f B RSS per "
              "connected session\n",
              r.signals_per_s, r.cpu_us_per_signal, r.rss_per_session_bytes);
  std::printf("             change -> watcher event: %zu samples, p50 %.2f ms, p99 %.2f ms, "
              "p99.9 %.2f ms\n",
              r.latencies_ms.size(), percentile(r.latencies_ms, 0.5),
              percentile(r.latencies_ms, 0.99), percentile(r.latencies_ms, 0.999));
  std::printf("  echo:      %.0f frames/s, %.1f us CPU per frame, %.0f B RSS per socket\n",
              e.signals_per_s, e.cpu_us_per_signal, e.rss_per_session_bytes);
  std::printf("  ratio:     presenced CPU per signal / echo CPU per frame = %.2f\n",
              r.cpu_us_per_signal / std::max(e.cpu_us_per_signal, 0.001));
  return 0;
}
