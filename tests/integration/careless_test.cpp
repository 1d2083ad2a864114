// Careless clients against a real presenced on loopback: a socket that stops
// reading while the node is told to stop, a dashboard that falls behind during a
// burst, a reader that never catches up, reads of ids nobody ever used, junk
// paths and methods, sockets that go quiet or stop answering pings, and a client
// whose active signals must keep its last_active_at current. Each test checks
// what a client (or an operator reading /metrics and /proc) sees; every wait
// polls with a deadline.
//
// The many-socket tests use `raw_ws` below: a minimal WebSocket client over a
// non-blocking socket, cheap enough for a thousand connections in one thread,
// that reads only when the test says so (so a test can stall it at the TCP
// level) and can shrink its receive buffer before connecting.
#include "client.hpp"
#include "node_process.hpp"
#include "polling.hpp"

#include <gtest/gtest.h>

// Sanitized builds (ASan keeps freed memory in quarantine; everything runs
// several times slower) get wider limits where a figure is about speed or RSS.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool sanitized = true;
#else
constexpr bool sanitized = false;
#endif
/// Deadlines of the burst tests stretch by this under a sanitizer.
constexpr int pace = sanitized ? 5 : 1;

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cerrno>
#include <cstring>
#include <deque>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <thread>

using namespace presence::testing;

namespace {

using steady = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

// --- the node and its process ------------------------------------------------------

/// Thresholds far beyond a test's length: nothing decays on its own, so every
/// change a test sees is one it made.
std::vector<std::string> steady_thresholds() {
  return {"--node.bind=127.0.0.1",
          "--presence.active_window_ms=60000",
          "--presence.idle_after_ms=120000",
          "--presence.stale_after_ms=180000",
          "--presence.offline_after_ms=240000"};
}

std::vector<std::string> with(std::vector<std::string> base,
                              std::initializer_list<std::string> more) {
  base.insert(base.end(), more);
  return base;
}

std::string read_text_file(const std::string& path) {
  std::ifstream in{path, std::ios::binary};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// The pid of the presenced `node` started: a child of this process whose
/// command line names the node's own data directory (node_process does not
/// expose the pid). -1 if none.
pid_t node_pid(node_process& node) {
  const std::string needle = "--node.data_dir=" + node.data_dir();
  pid_t found = -1;
  DIR* d = opendir("/proc");
  if (!d)
    return -1;
  while (auto* e = readdir(d)) {
    char* end = nullptr;
    auto pid = std::strtol(e->d_name, &end, 10);
    if (pid <= 0 || *end != '\0')
      continue;
    auto base = std::string{"/proc/"} + e->d_name;
    auto stat = read_text_file(base + "/stat");
    auto paren = stat.rfind(')');
    if (paren == std::string::npos)
      continue;
    char st = 0;
    long ppid = 0;
    if (std::sscanf(stat.c_str() + paren + 1, " %c %ld", &st, &ppid) != 2
        || ppid != static_cast<long>(getpid()))
      continue;
    auto cmdline = read_text_file(base + "/cmdline");
    size_t i = 0;
    while (i < cmdline.size()) {
      auto j = cmdline.find('\0', i);
      if (j == std::string::npos)
        j = cmdline.size();
      if (cmdline.compare(i, j - i, needle) == 0)
        found = static_cast<pid_t>(pid);
      i = j + 1;
    }
    if (found > 0)
      break;
  }
  closedir(d);
  return found;
}

/// Resident memory of `pid` in KiB (VmRSS), or -1.
long rss_kib(pid_t pid) {
  std::ifstream in{"/proc/" + std::to_string(pid) + "/status"};
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0)
      return std::strtol(line.c_str() + 6, nullptr, 10);
  return -1;
}

// --- /metrics, read as Prometheus text ----------------------------------------------

std::string metrics_text(http_client& http) {
  auto r = http.get("/metrics", "");
  EXPECT_EQ(r.status, 200u);
  return r.raw;
}

/// The sum of every sample whose line starts with `prefix` (e.g.
/// "presence_users{" for all states); -1 if there is none.
double sum_series(const std::string& text, const std::string& prefix) {
  double sum = 0;
  bool any = false;
  std::istringstream in{text};
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#' || line.rfind(prefix, 0) != 0)
      continue;
    auto sp = line.rfind(' ');
    if (sp == std::string::npos)
      continue;
    sum += std::strtod(line.c_str() + sp + 1, nullptr);
    any = true;
  }
  return any ? sum : -1;
}

/// An unlabelled series' value, or -1.
double series(const std::string& text, const std::string& name) {
  return sum_series(text, name + " ");
}

size_t line_count(const std::string& text) {
  return static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
}

// --- a minimal WebSocket client ------------------------------------------------------

/// One WebSocket over a non-blocking socket. Nothing is read unless the test
/// pumps it; pings are answered (when `auto_pong`) only while it is pumped, as a
/// browser that stopped its event loop would not answer them either.
class raw_ws {
public:
  /// Connects to 127.0.0.1:`port` (with SO_RCVBUF `rcvbuf` set first when > 0)
  /// and sends the upgrade request for `user` (dev mode, X-User).
  raw_ws(uint16_t port, const std::string& user, int rcvbuf = 0) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0)
      throw std::runtime_error(std::string{"socket: "} + std::strerror(errno));
    if (rcvbuf > 0)
      ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      auto why = std::string{"connect: "} + std::strerror(errno);
      ::close(fd_);
      throw std::runtime_error(why);
    }
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK);
    write_all("GET /v1/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
              "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
              "Sec-WebSocket-Version: 13\r\nX-User: "
              + user + "\r\n\r\n");
  }

  raw_ws(const raw_ws&) = delete;
  raw_ws& operator=(const raw_ws&) = delete;

  ~raw_ws() {
    if (fd_ >= 0)
      ::close(fd_);
  }

  int fd() const { return fd_; }
  bool upgraded() const { return upgraded_; }
  /// The server answered the upgrade with something else than 101.
  bool rejected() const { return rejected_; }
  /// EOF, a reset or a failed write: the connection is gone.
  bool dead() const { return dead_; }
  bool got_close() const { return got_close_; }
  unsigned close_code() const { return close_code_; }
  int pings() const { return pings_; }
  size_t bytes_in() const { return bytes_in_; }
  /// Text frames received and not yet taken.
  size_t pending() const { return texts_.size(); }

  bool auto_pong = true;

  void send_text(const std::string& s) { write_all(encode(0x1, s)); }
  void send(const json& j) { send_text(j.dump()); }

  /// Waits up to `timeout_ms` for data (0: not at all), then reads what is
  /// there (at most `max_bytes`); the number of bytes read.
  size_t pump(int timeout_ms = 0, size_t max_bytes = size_t{1} << 20) {
    if (dead_)
      return 0;
    if (timeout_ms > 0) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, timeout_ms) <= 0)
        return 0;
    }
    return read_available(max_bytes);
  }

  /// The next text frame as JSON (null if it is not JSON), if one was read.
  std::optional<json> take() {
    if (texts_.empty())
      return std::nullopt;
    auto j = json::parse(texts_.front(), nullptr, false);
    texts_.pop_front();
    return j;
  }

  /// The next text frame within `timeout`, reading as needed.
  std::optional<json> read(milliseconds timeout = seconds{5}) {
    auto deadline = steady::now() + timeout;
    while (texts_.empty() && !dead_ && steady::now() < deadline)
      pump(poll_slice(deadline));
    return take();
  }

  /// The next text frame with `op`, skipping others, within `timeout`.
  std::optional<json> read_op(const std::string& op, milliseconds timeout = seconds{5}) {
    auto deadline = steady::now() + timeout;
    while (steady::now() < deadline) {
      auto left = std::chrono::duration_cast<milliseconds>(deadline - steady::now());
      auto f = read(std::max(left, milliseconds{1}));
      if (!f) {
        if (dead_)
          return std::nullopt;
        continue;
      }
      if (f->is_object() && f->value("op", "") == op)
        return f;
    }
    return std::nullopt;
  }

  /// Waits for the 101 answer.
  bool wait_upgraded(milliseconds timeout = seconds{5}) {
    auto deadline = steady::now() + timeout;
    while (!upgraded_ && !rejected_ && !dead_ && steady::now() < deadline)
      pump(poll_slice(deadline));
    return upgraded_;
  }

  /// Closes the TCP connection without a close frame (a vanished client).
  void drop() {
    if (fd_ >= 0)
      ::close(fd_);
    fd_ = -1;
    dead_ = true;
  }

  /// Reads what is available, parses frames.
  size_t read_available(size_t max_bytes) {
    size_t total = 0;
    char buf[65536];
    while (total < max_bytes && !dead_) {
      auto n = ::read(fd_, buf, sizeof(buf));
      if (n > 0) {
        in_.append(buf, static_cast<size_t>(n));
        total += static_cast<size_t>(n);
        continue;
      }
      if (n == 0) {
        dead_ = true;
        break;
      }
      if (errno == EINTR)
        continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK)
        dead_ = true;
      break;
    }
    bytes_in_ += total;
    parse();
    return total;
  }

private:
  static int poll_slice(steady::time_point deadline) {
    auto left = std::chrono::duration_cast<milliseconds>(deadline - steady::now()).count();
    return static_cast<int>(std::clamp<long long>(left, 1, 50));
  }

  static std::string encode(int opcode, const std::string& payload) {
    std::string out;
    out.push_back(static_cast<char>(0x80 | opcode));
    auto n = static_cast<uint64_t>(payload.size());
    if (n < 126) {
      out.push_back(static_cast<char>(0x80 | n));
    } else if (n < 65536) {
      out.push_back(static_cast<char>(0x80 | 126));
      out.push_back(static_cast<char>((n >> 8) & 0xff));
      out.push_back(static_cast<char>(n & 0xff));
    } else {
      out.push_back(static_cast<char>(0x80 | 127));
      for (int i = 7; i >= 0; --i)
        out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
    }
    const unsigned char mask[4] = {0x3a, 0x5c, 0x91, 0xe7};
    out.append(reinterpret_cast<const char*>(mask), 4);
    for (size_t i = 0; i < payload.size(); ++i)
      out.push_back(static_cast<char>(static_cast<unsigned char>(payload[i]) ^ mask[i % 4]));
    return out;
  }

  void write_all(const std::string& s) {
    size_t off = 0;
    auto deadline = steady::now() + seconds{5};
    while (off < s.size() && !dead_) {
      auto n = ::send(fd_, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (n > 0) {
        off += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        if (steady::now() > deadline)
          throw std::runtime_error("raw_ws: the server does not read (5 s)");
        pollfd p{fd_, POLLOUT, 0};
        ::poll(&p, 1, 50);
        continue;
      }
      dead_ = true; // the peer is gone: what is left is lost, as for any client
    }
  }

  void parse() {
    size_t pos = 0;
    auto byte = [&](size_t i) { return static_cast<unsigned char>(in_[pos + i]); };
    if (!upgraded_ && !rejected_) {
      auto end = in_.find("\r\n\r\n");
      if (end == std::string::npos)
        return;
      auto status_line = in_.substr(0, in_.find("\r\n"));
      upgraded_ = status_line.find(" 101 ") != std::string::npos;
      rejected_ = !upgraded_;
      pos = end + 4;
    }
    while (upgraded_) {
      size_t avail = in_.size() - pos;
      if (avail < 2)
        break;
      auto b0 = byte(0), b1 = byte(1);
      uint64_t len = b1 & 0x7f;
      size_t header = 2;
      if (len == 126) {
        if (avail < 4)
          break;
        len = (uint64_t{byte(2)} << 8) | byte(3);
        header = 4;
      } else if (len == 127) {
        if (avail < 10)
          break;
        len = 0;
        for (size_t i = 0; i < 8; ++i)
          len = (len << 8) | byte(2 + i);
        header = 10;
      }
      const bool masked = (b1 & 0x80) != 0;
      if (masked)
        header += 4;
      if (avail < header + len)
        break;
      std::string payload = in_.substr(pos + header, static_cast<size_t>(len));
      if (masked)
        for (size_t i = 0; i < payload.size(); ++i)
          payload[i] = static_cast<char>(payload[i] ^ in_[pos + header - 4 + i % 4]);
      pos += header + static_cast<size_t>(len);
      on_frame(b0 & 0x0f, (b0 & 0x80) != 0, std::move(payload));
    }
    in_.erase(0, pos);
  }

  void on_frame(int opcode, bool fin, std::string payload) {
    switch (opcode) {
      case 0x0: // continuation
      case 0x1: // text
      case 0x2: // binary
        message_ += payload;
        if (fin) {
          texts_.push_back(std::move(message_));
          message_.clear();
        }
        break;
      case 0x8: // close
        got_close_ = true;
        close_code_ = payload.size() >= 2
                        ? (static_cast<unsigned>(static_cast<unsigned char>(payload[0])) << 8)
                            | static_cast<unsigned char>(payload[1])
                        : 1005u;
        break;
      case 0x9: // ping
        ++pings_;
        if (auto_pong && !dead_)
          write_all(encode(0xA, payload));
        break;
      default: // pong or reserved
        break;
    }
  }

  int fd_ = -1;
  std::string in_;
  std::string message_;
  std::deque<std::string> texts_;
  bool upgraded_ = false;
  bool rejected_ = false;
  bool dead_ = false;
  bool got_close_ = false;
  unsigned close_code_ = 0;
  int pings_ = 0;
  size_t bytes_in_ = 0;
};

using ws_ptr = std::unique_ptr<raw_ws>;

/// Waits up to `timeout_ms` until one of `socks` has data, then reads what each
/// ready one has.
void pump_all(const std::vector<raw_ws*>& socks, int timeout_ms) {
  std::vector<pollfd> fds;
  std::vector<raw_ws*> owners;
  for (auto* s : socks)
    if (s && !s->dead()) {
      fds.push_back({s->fd(), POLLIN, 0});
      owners.push_back(s);
    }
  if (fds.empty())
    return;
  if (::poll(fds.data(), fds.size(), timeout_ms) <= 0)
    return;
  for (size_t i = 0; i < fds.size(); ++i)
    if (fds[i].revents != 0)
      owners[i]->read_available(size_t{1} << 20);
}

std::vector<raw_ws*> ptrs(const std::vector<ws_ptr>& v) {
  std::vector<raw_ws*> out;
  for (auto& p : v)
    out.push_back(p.get());
  return out;
}

/// Opens one WebSocket session (hello) per user, all at once: connects every
/// socket, then says hello on each as soon as it is upgraded. On return every
/// socket got its welcome (`welcomes` holds them) or the test has failed.
std::vector<ws_ptr> open_sessions(uint16_t port, const std::vector<std::string>& users,
                                  milliseconds timeout, std::vector<json>* welcomes = nullptr) {
  auto deadline = steady::now() + timeout;
  std::vector<ws_ptr> socks;
  socks.reserve(users.size());
  for (auto& u : users)
    socks.push_back(std::make_unique<raw_ws>(port, u));
  std::vector<bool> said_hello(users.size(), false);
  std::vector<json> got(users.size());
  size_t welcomed = 0;
  auto all = ptrs(socks);
  while (welcomed < users.size() && steady::now() < deadline) {
    pump_all(all, 20);
    for (size_t i = 0; i < socks.size(); ++i) {
      auto& s = *socks[i];
      if (!said_hello[i] && s.upgraded()) {
        s.send({{"op", "hello"}, {"device", "careless"}});
        said_hello[i] = true;
      }
      while (got[i].is_null()) {
        auto f = s.take();
        if (!f)
          break;
        if (f->value("op", "") == "welcome") {
          got[i] = *f;
          ++welcomed;
        }
      }
    }
  }
  size_t rejected = 0, dead = 0;
  for (auto& s : socks) {
    rejected += s->rejected() ? 1 : 0;
    dead += s->dead() ? 1 : 0;
  }
  EXPECT_EQ(welcomed, users.size())
    << "sessions without a welcome within " << timeout.count() << " ms (" << rejected
    << " upgrades refused, " << dead << " connections gone)";
  if (welcomes)
    *welcomes = std::move(got);
  return socks;
}

std::vector<std::string> numbered(const std::string& prefix, size_t n) {
  std::vector<std::string> out;
  for (size_t i = 0; i < n; ++i)
    out.push_back(prefix + std::to_string(i));
  return out;
}

std::string random_token(std::mt19937_64& rng) {
  static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string out;
  for (int i = 0; i < 12; ++i)
    out.push_back(alphabet[rng() % (sizeof(alphabet) - 1)]);
  return out;
}

bool is_json_error(const http_result& r) {
  return r.body.is_object() && r.body.contains("error") && r.body["error"].is_object()
         && r.body["error"].value("code", "") != ""
         && r.body["error"].contains("message") && r.body["error"]["message"].is_string();
}

} // namespace

// Verifies a SIGTERM while a subscribed WebSocket has stopped reading (its
// receive window closed, never answering the close handshake) and events keep
// coming: the node still flushes its storage and exits 0 within the stop's 10 s,
// and what it flushed comes back on the next start.
TEST(CarelessTest, SigtermWithStalledReaderFlushesAndExitsCleanly) {
  node_process node{with(steady_thresholds(), {"--storage.flush_interval_ms=20"})};
  http_client http{node.port()};
  // Durable state: busy's session over HTTP, in a room.
  auto created = http.post("/v1/sessions", {{"device", "laptop"}, {"rooms", {"den"}}}, "busy");
  ASSERT_EQ(created.status, 201u) << created.raw;
  auto sid = created.body.value("session_id", "");

  // A dashboard on a tiny receive buffer that subscribes to busy, the room and
  // many more users (a big `subscribed` answer), then never reads again.
  raw_ws stalled{node.port(), "stalled", 4096};
  ASSERT_TRUE(stalled.wait_upgraded());
  stalled.send({{"op", "hello"}});
  ASSERT_TRUE(stalled.read_op("welcome"));
  auto watched = numbered("quiet-", 999);
  watched.push_back("busy");
  stalled.send({{"op", "subscribe"}, {"users", watched}, {"rooms", {"den"}}});
  stalled.auto_pong = false;

  // Events flow to it: busy flips between background and active (within the
  // per-connection signal rate), each a change of busy and of the room.
  for (int i = 0; i < 12; ++i) {
    auto r = http.post("/v1/sessions/" + sid + "/signal",
                       {{"signal", i % 2 == 0 ? "background" : "active"}}, "busy");
    EXPECT_EQ(r.status, 200u) << r.raw;
  }
  EXPECT_EQ(http.get("/v1/users/busy/presence", "other").body.value("seq", 0), 13)
    << "one change per flip (seq 1 at creation)";

  auto started = steady::now();
  auto status = node.stop();
  auto took = std::chrono::duration_cast<milliseconds>(steady::now() - started);
  EXPECT_EQ(status, 0) << "stop() gives -1 when the process died of a signal or did not "
                          "exit within 10 s; took "
                       << took.count() << " ms";
  EXPECT_LT(took, seconds{10});
  EXPECT_NE(node.log().find("storage flushed"), std::string::npos);

  // What it flushed is there after a restart.
  node.restart();
  http_client again{node.port()};
  auto s = again.get("/v1/sessions/" + sid, "busy");
  EXPECT_EQ(s.status, 200u) << s.raw;
  EXPECT_EQ(s.body.value("state", ""), "active") << s.raw;
  EXPECT_EQ(again.get("/v1/users/busy/presence", "other").body.value("seq", 0), 13);
}

// Verifies a dashboard subscribed to 1000 users that does not read for a second
// while all of them change 30 times in two bursts (then half leave, and the
// other half's sockets vanish): it is not closed, it ends with every user's
// latest state and seq (as GET/query answer them), and each user's seq only
// increases (gaps are allowed: coalescing). Afterwards the node still opens 200
// sessions at once within a few seconds.
TEST(CarelessTest, DashboardBurstIsCoalescedNotClosed) {
  const auto test_started = steady::now();
  // The test's own client reads 1000 sockets on one thread: under a sanitizer
  // it may take longer than 10 s to drain, which the server rightly closes.
  node_process node{with(steady_thresholds(), {sanitized ? "--limits.slow_reader_ms=60000"
                                                         : "--limits.slow_reader_ms=10000"})};
  const size_t n = 1000;
  auto ids = numbered("dash-", n);
  auto sessions = open_sessions(node.port(), ids, seconds{10 * pace});
  ASSERT_FALSE(::testing::Test::HasFailure());

  // A dashboard on a slow link (small receive buffer: what the server cannot
  // send stays queued in the server, not in the kernel).
  raw_ws watcher{node.port(), "dashboard", 8192};
  ASSERT_TRUE(watcher.wait_upgraded());
  watcher.send({{"op", "hello"}});
  ASSERT_TRUE(watcher.read_op("welcome"));

  struct seen {
    int64_t snapshot_seq = -1;
    int64_t last_seq = -1;
    std::string last_state;
    size_t events = 0;
  };
  std::map<std::string, seen> view;
  size_t seq_violations = 0;
  std::string first_violation;
  bool subscribed = false;
  size_t presence_events = 0;
  auto observe = [&](const json& f) {
    if (!f.is_object())
      return;
    auto op = f.value("op", "");
    if (op == "subscribed") {
      subscribed = true;
      for (auto& u : f["users"])
        view[u.value("user_id", "")].snapshot_seq = u.value("seq", int64_t{-1});
    } else if (op == "presence") {
      ++presence_events;
      auto& v = view[f.value("user_id", "")];
      auto seq = f.value("seq", int64_t{-1});
      // Its snapshot was taken before any of its events, even if the
      // `subscribed` answer (gathered over all users) comes later.
      auto floor = std::max(v.last_seq, v.snapshot_seq);
      if (seq <= floor && seq_violations++ == 0)
        first_violation = f.dump() + " after seq " + std::to_string(floor);
      v.last_seq = std::max(v.last_seq, seq);
      if (seq >= v.last_seq)
        v.last_state = f.value("state", "");
      ++v.events;
    }
  };
  auto drain_watcher = [&] {
    watcher.read_available(size_t{4} << 20);
    while (auto f = watcher.take())
      observe(*f);
  };

  watcher.send({{"op", "subscribe"}, {"users", ids}});
  auto deadline = steady::now() + seconds{10 * pace};
  while (!subscribed && !watcher.dead() && steady::now() < deadline) {
    watcher.pump(50);
    while (auto f = watcher.take())
      observe(*f);
  }
  ASSERT_TRUE(subscribed) << "no subscribed answer for 1000 users";
  ASSERT_EQ(view.size(), n);

  // The burst, in two rounds a second apart (the per-socket signal rate allows
  // 20 at once, then 20/s): every session flips 15 times, then 15 times again,
  // about 4.5 MB of events for the dashboard, more than the kernel's socket
  // buffers hold, so most of it has to wait in the server. Odd users then leave
  // (the server closes their sockets); even users' sockets are dropped once all
  // their signals are acknowledged (no leave: they stay active).
  const int flips = 15;
  auto round = [&](int r) {
    for (size_t i = 0; i < n; ++i)
      for (int k = r * flips; k < (r + 1) * flips; ++k)
        sessions[i]->send({{"op", "signal"}, {"signal", k % 2 == 0 ? "background" : "active"}});
  };
  round(0);
  // The dashboard looks away for a second (so do the sessions: acks wait).
  std::this_thread::sleep_for(seconds{1});
  round(1);
  for (size_t i = 1; i < n; i += 2)
    sessions[i]->send({{"op", "leave"}});

  // Then it drains, while the sessions finish: an even one is dropped after its
  // 30 acks, an odd one ends when the server closes it.
  std::vector<int> acks(n, 0);
  size_t session_errors = 0;
  std::string first_session_error;
  std::vector<bool> done(n, false);
  size_t finished = 0;
  deadline = steady::now() + seconds{10 * pace};
  auto all = ptrs(sessions);
  while (finished < n && steady::now() < deadline) {
    drain_watcher();
    pump_all(all, 10);
    for (size_t i = 0; i < n; ++i) {
      if (done[i])
        continue;
      auto& s = *sessions[i];
      while (auto f = s.take()) {
        auto op = f->value("op", "");
        if (op == "ack")
          ++acks[i];
        else if (op == "error" && session_errors++ == 0)
          first_session_error = f->dump();
      }
      bool end = i % 2 == 0 ? acks[i] >= 2 * flips : (s.got_close() || s.dead());
      if (end) {
        s.drop();
        done[i] = true;
        ++finished;
      }
    }
  }
  if (finished < n) {
    std::map<int, size_t> by_acks;
    size_t open_odd = 0;
    for (size_t i = 0; i < n; ++i)
      if (!done[i]) {
        if (i % 2 == 0)
          ++by_acks[acks[i]];
        else
          ++open_odd;
      }
    std::ostringstream os;
    for (auto& [a, c] : by_acks)
      os << c << " with " << a << " acks; ";
    ADD_FAILURE() << n - finished << " sessions did not finish: even ones (want "
                  << 2 * flips << " acks): " << os.str() << open_odd
                  << " odd ones not closed after leave; " << session_errors
                  << " errors, e.g. " << first_session_error;
    return;
  }

  // What the server holds: every user settled (even active, odd offline).
  std::map<std::string, std::pair<std::string, int64_t>> truth;
  deadline = steady::now() + seconds{10 * pace};
  bool settled = false;
  while (!settled && steady::now() < deadline) {
    drain_watcher();
    auto q = http_client{node.port()}.post("/v1/presence/query", {{"users", ids}}, "auditor");
    ASSERT_EQ(q.status, 200u) << q.raw.substr(0, 500);
    settled = true;
    truth.clear();
    for (auto& u : q.body["users"]) {
      auto id = u.value("user_id", "");
      truth[id] = {u.value("state", ""), u.value("seq", int64_t{-1})};
      auto i = std::stoul(id.substr(5));
      settled = settled && u.value("state", "") == (i % 2 == 0 ? "active" : "offline");
    }
  }
  ASSERT_TRUE(settled) << "the users did not all reach their last state";

  // The dashboard catches up to exactly that.
  auto caught_up = [&] {
    for (auto& [id, t] : truth) {
      auto& v = view[id];
      if (v.last_seq != t.second || v.last_state != t.first)
        return false;
    }
    return true;
  };
  deadline = steady::now() + seconds{10 * pace};
  while (!caught_up() && !watcher.dead() && !watcher.got_close()
         && steady::now() < deadline) {
    watcher.pump(20);
    drain_watcher();
  }
  EXPECT_FALSE(watcher.got_close()) << "closed with " << watcher.close_code()
                                    << " (1013: treated as a slow reader)";
  EXPECT_FALSE(watcher.dead()) << "the dashboard's connection was dropped";
  size_t behind = 0;
  std::string example;
  for (auto& [id, t] : truth) {
    auto& v = view[id];
    if (v.last_seq != t.second || v.last_state != t.first) {
      if (behind++ == 0)
        example = id + ": saw " + v.last_state + " seq " + std::to_string(v.last_seq)
                  + ", the server has " + t.first + " seq " + std::to_string(t.second);
    }
  }
  EXPECT_EQ(behind, 0u) << "users whose last event is not their current state, e.g. "
                        << example;
  EXPECT_EQ(seq_violations, 0u) << "a user's seq went backwards or repeated: "
                                << first_violation;
  size_t changes = 0;
  for (auto& [id, t] : truth)
    changes += static_cast<size_t>(t.second - view[id].snapshot_seq);
  std::printf("[ burst    ] %zu changes, %zu presence events delivered, %zu bytes\n",
              changes, presence_events, watcher.bytes_in());

  // The node still answers, and 200 sessions opened at once all get welcome.
  EXPECT_EQ(http_client{node.port()}.get("/healthz", "").status, 200u);
  auto opened_at = steady::now();
  auto late = open_sessions(node.port(), numbered("late-", 200), seconds{5 * pace});
  std::printf("[ burst    ] 200 new sessions welcomed in %lld ms\n",
              static_cast<long long>(std::chrono::duration_cast<milliseconds>(
                                       steady::now() - opened_at)
                                       .count()));
  EXPECT_FALSE(watcher.got_close());
  EXPECT_LT(steady::now() - test_started, seconds{30 * pace});
}

// Verifies a reader that stays behind (a tiny receive window, never reading
// while the 1000 users it watches keep changing for 5 s) is closed with
// 1013 (or dropped) under limits.slow_reader_ms=1000, and that the node's memory
// stays bounded meanwhile and it keeps answering.
TEST(CarelessTest, SlowReaderThatStaysBehindIsClosed1013) {
  node_process node{with(steady_thresholds(), {"--limits.slow_reader_ms=1000"})};
  http_client http{node.port()};
  auto pid = node_pid(node);
  ASSERT_GT(pid, 0) << "cannot find the node's pid under /proc";
  const size_t n = 1000;
  auto ids = numbered("flood-", n);
  auto sessions = open_sessions(node.port(), ids, seconds{10});
  ASSERT_FALSE(::testing::Test::HasFailure());

  raw_ws watcher{node.port(), "slowpoke", 4096};
  ASSERT_TRUE(watcher.wait_upgraded());
  watcher.send({{"op", "hello"}});
  ASSERT_TRUE(watcher.read_op("welcome"));
  watcher.send({{"op", "subscribe"}, {"users", ids}});
  ASSERT_TRUE(watcher.read_op("subscribed", seconds{10}));
  watcher.auto_pong = false;
  auto rss_before = rss_kib(pid);
  long rss_max = rss_before;

  // The flood: every session flips every 100 ms (10 signals/s, within the
  // per-socket rate), for 5 s, about 1.5 MB/s of events for the watcher, which
  // reads nothing. The kernel buffers the first few MB (the server's send
  // buffer grows to net.ipv4.tcp_wmem's maximum); the rest waits in the server.
  auto flood_start = steady::now();
  auto next = flood_start;
  int round = 0;
  auto all = ptrs(sessions);
  while (steady::now() - flood_start < seconds{5}) {
    for (auto& s : sessions)
      s->send({{"op", "signal"}, {"signal", round % 2 == 0 ? "background" : "active"}});
    ++round;
    next += milliseconds{100};
    while (steady::now() < next) {
      pump_all(all, 5); // the sessions read their acks
      for (auto& s : sessions)
        while (s->take()) {
        }
    }
    rss_max = std::max(rss_max, rss_kib(pid));
  }

  // Now it reads: what was in flight, then a close (1013) or the end of the
  // connection, within 10 s (a node that kept it open leaves it open once the
  // backlog is drained).
  auto deadline = steady::now() + seconds{10};
  while (!watcher.got_close() && !watcher.dead() && steady::now() < deadline) {
    watcher.pump(50, size_t{8} << 20);
    while (watcher.take()) {
    }
  }
  EXPECT_TRUE(watcher.got_close() || watcher.dead())
    << "a reader 5 s behind under limits.slow_reader_ms=1000 is still open ("
    << watcher.bytes_in() << " bytes read)";
  if (watcher.got_close()) {
    EXPECT_EQ(watcher.close_code(), 1013u);
  }
  EXPECT_EQ(http.get("/healthz", "").status, 200u);
  auto rss_after = rss_kib(pid);
  rss_max = std::max(rss_max, rss_after);
  std::printf("[ slow     ] %d rounds of %zu signals; RSS %ld -> max %ld -> %ld KiB; "
              "closed %s (code %u), %zu bytes read\n",
              round, n, rss_before, rss_max, rss_after, watcher.got_close() ? "yes" : "no",
              watcher.close_code(), watcher.bytes_in());
  if (!sanitized) { // ASan's quarantine holds freed memory
    EXPECT_LT(rss_max - rss_before, 64L * 1024) << "RSS grew by more than 64 MiB";
  }
  auto m = metrics_text(http);
  EXPECT_GE(series(m, "presence_ws_closed_slow_total"), 1.0);
  // The node closed it with 1013 (whether the close frame got through or not).
  EXPECT_GE(sum_series(m, "presence_ws_closed_total{code=\"1013\"}"), 1.0);
}

// Verifies reads of ids nobody ever used (20,000 user reads, 20 queries of
// 1000 ids, 5000 room reads) all answer offline / empty, and leave no actors
// behind (the gauges go back near 0 once idle entities passivate) and no memory.
TEST(CarelessTest, ReadsOfUnknownIdsLeaveNoActors) {
  node_process node{with(steady_thresholds(), {"--node.passivate_after_ms=500"})};
  http_client http{node.port()};
  auto pid = node_pid(node);
  ASSERT_GT(pid, 0) << "cannot find the node's pid under /proc";
  std::mt19937_64 seed_rng{std::random_device{}()};

  // Warm-up: allocator arenas, connections, the route labels.
  for (int i = 0; i < 100; ++i) {
    http.get("/v1/users/warm-" + std::to_string(i) + "/presence", "reader");
    http.get("/v1/rooms/warm-" + std::to_string(i), "reader");
  }
  http.post("/v1/presence/query", {{"users", numbered("warmq-", 1000)}}, "reader");
  // A fresh connection per look: the reads may take longer than the 30 s a
  // keep-alive connection may stay idle (under a sanitizer).
  std::deque<std::unique_ptr<http_client>> looks;
  auto fresh = [&]() -> http_client& {
    looks.push_back(std::make_unique<http_client>(node.port()));
    return *looks.back();
  };
  auto settled = [&](double limit) {
    auto m = metrics_text(fresh());
    auto users = sum_series(m, "presence_users{");
    auto rooms = series(m, "presence_rooms");
    return users >= 0 && users < limit && rooms >= 0 && rooms < limit;
  };
  eventually([&] { return settled(1); }, seconds{5});
  auto rss_before = rss_kib(pid);

  const int threads = 4;
  const auto reads_started = steady::now();
  std::atomic<int> not_ok{0}, not_offline{0}, requests{0};
  std::vector<std::string> errors(threads);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    auto seed = seed_rng();
    pool.emplace_back([&, t, seed] {
      std::mt19937_64 rng{seed};
      http_client c{node.port()};
      auto note = [&](const std::string& what) {
        if (errors[static_cast<size_t>(t)].empty())
          errors[static_cast<size_t>(t)] = what;
      };
      for (int i = 0; i < 20000 / threads; ++i) {
        auto r = c.get("/v1/users/u-" + random_token(rng) + "/presence", "reader");
        ++requests;
        if (r.status != 200) {
          ++not_ok;
          note(r.raw);
        } else if (r.body.value("state", "") != "offline") {
          ++not_offline;
          note(r.raw);
        }
      }
      for (int i = 0; i < 20 / threads; ++i) {
        json ids = json::array();
        for (int k = 0; k < 1000; ++k)
          ids.push_back("q-" + random_token(rng));
        auto r = c.post("/v1/presence/query", {{"users", ids}}, "reader");
        ++requests;
        if (r.status != 200 || r.body["users"].size() != 1000) {
          ++not_ok;
          note(r.raw.substr(0, 300));
          continue;
        }
        for (auto& u : r.body["users"])
          if (u.value("state", "") != "offline") {
            ++not_offline;
            note(u.dump());
          }
      }
      for (int i = 0; i < 5000 / threads; ++i) {
        auto r = c.get("/v1/rooms/r-" + random_token(rng), "reader");
        ++requests;
        if (r.status != 200) {
          ++not_ok;
          note(r.raw);
        } else if (r.body.value("phase", "") != "empty" || r.body.value("member_count", -1) != 0) {
          ++not_offline;
          note(r.raw);
        }
      }
    });
  }
  for (auto& th : pool)
    th.join();
  auto reads_ms = std::chrono::duration_cast<milliseconds>(steady::now() - reads_started);
  EXPECT_EQ(requests.load(), 20000 + 20 + 5000);
  std::string first_error;
  for (auto& e : errors)
    if (first_error.empty())
      first_error = e;
  EXPECT_EQ(not_ok.load(), 0) << first_error;
  EXPECT_EQ(not_offline.load(), 0) << "unknown ids read as something else than offline / "
                                      "an empty room: "
                                   << first_error;

  // The gauges go back near 0 (within a few passivation intervals).
  bool gone = eventually([&] { return settled(100); }, seconds{10});
  auto m = metrics_text(fresh());
  EXPECT_TRUE(gone) << "user actors " << sum_series(m, "presence_users{") << ", room actors "
                    << series(m, "presence_rooms") << " after 45,000 reads of unknown ids";
  auto rss_after = rss_kib(pid);
  std::printf("[ unknown  ] %d requests in %lld ms; RSS %ld -> %ld KiB; users %g, rooms %g\n",
              requests.load(), static_cast<long long>(reads_ms.count()), rss_before, rss_after,
              sum_series(m, "presence_users{"), series(m, "presence_rooms"));
  if (!sanitized) { // ASan's quarantine holds freed memory: no figure to read there
    EXPECT_LT(rss_after - rss_before, 20L * 1024) << "RSS grew by more than 20 MiB";
  }
  EXPECT_EQ(fresh().get("/healthz", "").status, 200u);
}

// Verifies requests to paths and methods no route has (varying ids in every
// segment, PATCH, made-up methods) all get 404 or 405 with a JSON error body,
// and do not add series to /metrics: after a warm-up that touched each shape
// once, thousands more leave the line count as it was.
TEST(CarelessTest, JunkPathsAndMethodsKeepMetricsBounded) {
  node_process node{steady_thresholds()};
  http_client http{node.port()};
  http_client any{node.port()};
  size_t bad_answers = 0;
  std::string first_bad;
  auto check = [&](const std::string& what, const http_result& r) {
    if ((r.status == 404 || r.status == 405) && is_json_error(r))
      return;
    if (bad_answers++ == 0)
      first_bad = what + " -> " + std::to_string(r.status) + " " + r.raw;
  };
  // Shapes of junk, each a function of N.
  auto junk_get = [](int i) {
    auto n = std::to_string(i);
    switch (i % 4) {
      case 0: return "/v1/junk-" + n + "/x" + n;
      case 1: return "/v1/users/u-" + n + "/junk-" + n;
      case 2: return "/v1/junk-" + n;
      default: return "/junk-" + n + "/x" + n;
    }
  };
  auto patch_target = [](int i) {
    auto n = std::to_string(i);
    switch (i % 4) {
      case 0: return "/v1/junk-" + n + "/x" + n;
      case 1: return std::string{"/v1/sessions"};
      case 2: return "/v1/users/u-" + n + "/presence";
      default: return "/v1/rooms/r-" + n;
    }
  };
  auto method_name = [](int i) {
    static const char* names[] = {"FOO", "BAR", "PROPFIND", "XYZZY"};
    return std::string{names[i % 4]} + (i >= 4 ? std::to_string(i) : std::string{});
  };
  auto send_gets = [&](int from, int to) {
    for (int i = from; i < to; ++i) {
      auto t = junk_get(i);
      check("GET " + t, http.get(t));
    }
  };
  auto send_patches = [&](int from, int to) {
    for (int i = from; i < to; ++i) {
      auto t = patch_target(i);
      check("PATCH " + t, http.request(http::verb::patch, t, "{}", "alice"));
    }
  };
  auto send_methods = [&](int from, int to) {
    for (int i = from; i < to; ++i) {
      auto m = method_name(i);
      auto t = i % 2 == 0 ? std::string{"/v1/sessions"} : junk_get(i);
      check(m + " " + t, any.request(m, t, {}, "alice"));
    }
  };

  // Warm-up: each shape once (and /metrics itself).
  send_gets(0, 4);
  send_patches(0, 4);
  send_methods(0, 4);
  metrics_text(http);
  auto warm = line_count(metrics_text(http));

  send_gets(4, 2004);
  auto after_gets = line_count(metrics_text(http));
  send_patches(4, 504);
  auto after_patches = line_count(metrics_text(http));
  send_methods(4, 504);
  auto text = metrics_text(http);
  auto after_methods = line_count(text);

  EXPECT_EQ(bad_answers, 0u) << "not a 404/405 with a JSON error: " << first_bad;
  EXPECT_EQ(after_gets, warm) << "2000 junk GETs added " << after_gets - warm
                              << " lines to /metrics";
  EXPECT_EQ(after_patches, after_gets)
    << "500 PATCHes added " << after_patches - after_gets << " lines to /metrics";
  EXPECT_EQ(after_methods, after_patches)
    << "500 requests with made-up methods added " << after_methods - after_patches
    << " lines to /metrics";
  std::printf("[ junk     ] /metrics lines: warm %zu, after GETs %zu, PATCHes %zu, "
              "methods %zu; %zu bytes\n",
              warm, after_gets, after_patches, after_methods, text.size());
  EXPECT_EQ(http.get("/healthz", "").status, 200u);
}

// Verifies server pings (limits.ws_ping_interval_ms=300): a quiet socket that
// keeps reading gets a ping at least every interval and answers with pongs, so
// it stays open; a socket that stops reading altogether (no pong) is dropped
// within about three intervals.
TEST(CarelessTest, QuietSocketGetsServerPings) {
  node_process node{with(steady_thresholds(), {"--limits.ws_ping_interval_ms=300"})};
  http_client http{node.port()};

  // The deaf one: hello, then it never reads again, so it never answers a ping.
  raw_ws deaf{node.port(), "deaf"};
  ASSERT_TRUE(deaf.wait_upgraded());
  deaf.send({{"op", "hello"}});
  ASSERT_TRUE(deaf.read_op("welcome"));
  deaf.auto_pong = false;
  auto deaf_since = steady::now();

  // The quiet one: hello, then 2 s of silence while reading (answering pings).
  raw_ws quiet{node.port(), "quiet"};
  ASSERT_TRUE(quiet.wait_upgraded());
  quiet.send({{"op", "hello"}});
  ASSERT_TRUE(quiet.read_op("welcome"));
  EXPECT_EQ(series(metrics_text(http), "presence_sockets_open"), 2.0);
  auto until = steady::now() + seconds{2};
  while (steady::now() < until && !quiet.dead() && !quiet.got_close())
    quiet.pump(20);
  EXPECT_GE(quiet.pings(), 3) << "pings in 2 s of silence at a 300 ms interval";
  EXPECT_FALSE(quiet.got_close()) << "closed with " << quiet.close_code();
  EXPECT_FALSE(quiet.dead());
  // It still works.
  quiet.send({{"op", "subscribe"}, {"users", {"deaf"}}});
  EXPECT_TRUE(quiet.read_op("subscribed"));

  // The deaf one is gone from the node's sockets within 3 intervals + slack.
  auto budget = deaf_since + milliseconds{3 * 300 + 1500};
  auto left = std::max(milliseconds{100}, std::chrono::duration_cast<milliseconds>(
                                            budget - steady::now()));
  EXPECT_TRUE(eventually(
    [&] { return series(metrics_text(http), "presence_sockets_open") == 1.0; }, left))
    << "presence_sockets_open is " << series(metrics_text(http), "presence_sockets_open")
    << " " << std::chrono::duration_cast<milliseconds>(steady::now() - deaf_since).count()
    << " ms after the deaf socket stopped reading";
  // And when it finally reads, it finds the end of its connection.
  auto deadline = steady::now() + seconds{2};
  while (!deaf.dead() && steady::now() < deadline) {
    deaf.pump(50);
    while (deaf.take()) {
    }
  }
  EXPECT_TRUE(deaf.dead()) << "the deaf socket is still connected (" << deaf.pings()
                           << " pings, close frame " << (deaf.got_close() ? "yes" : "no")
                           << ")";
  EXPECT_FALSE(quiet.dead());
  EXPECT_FALSE(quiet.got_close());
}

// Verifies last_active_at follows active signals that change nothing (the
// session stays active): after 4 s of one every 500 ms it is the time of the
// latest, for the user and for its session.
TEST(CarelessTest, LastActiveAtFollowsActiveSignals) {
  node_process node{steady_thresholds()};
  http_client http{node.port()};
  auto created = http.post("/v1/sessions", {{"state", "active"}}, "gina");
  ASSERT_EQ(created.status, 201u) << created.raw;
  auto sid = created.body.value("session_id", "");
  auto created_at = created.body.value("server_time", int64_t{0});
  int64_t last_signal_at = 0;
  auto until = steady::now() + seconds{4};
  while (steady::now() < until) {
    std::this_thread::sleep_for(milliseconds{500}); // the client's own pace
    auto s = http.post("/v1/sessions/" + sid + "/signal", {{"signal", "active"}}, "gina");
    ASSERT_EQ(s.status, 200u) << s.raw;
    EXPECT_EQ(s.body.value("state", ""), "active");
    last_signal_at = s.body.value("server_time", int64_t{0});
  }
  ASSERT_GT(last_signal_at, created_at + 3000);
  auto p = http.get("/v1/users/gina/presence", "hank");
  auto now = now_ms();
  ASSERT_EQ(p.status, 200u) << p.raw;
  ASSERT_TRUE(p.body["last_active_at"].is_number()) << p.raw;
  auto last_active = p.body["last_active_at"].get<int64_t>();
  EXPECT_LT(std::abs(now - last_active), 1500)
    << "user last_active_at is " << now - last_active << " ms old (created "
    << now - created_at << " ms ago): " << p.raw;
  EXPECT_GE(last_active, last_signal_at - 50) << p.raw;
  ASSERT_TRUE(p.body["last_active_ago_ms"].is_number()) << p.raw;
  EXPECT_LT(p.body["last_active_ago_ms"].get<int64_t>(), 1500) << p.raw;
  ASSERT_EQ(p.body["sessions"].size(), 1u) << p.raw;
  auto& ps = p.body["sessions"][0];
  ASSERT_TRUE(ps["last_active_at"].is_number()) << p.raw;
  EXPECT_LT(std::abs(now - ps["last_active_at"].get<int64_t>()), 1500)
    << "the user view's session entry: " << p.raw;
  auto sv = http.get("/v1/sessions/" + sid, "gina");
  ASSERT_EQ(sv.status, 200u) << sv.raw;
  ASSERT_TRUE(sv.body["last_active_at"].is_number()) << sv.raw;
  EXPECT_LT(std::abs(now - sv.body["last_active_at"].get<int64_t>()), 1500)
    << "the session view: " << sv.raw;
}
