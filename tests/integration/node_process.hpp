// Starts a real `presenced` on loopback with a free port (port 0, read back from
// its log), and stops it with SIGTERM (or SIGKILL) when the test is done.
#pragma once

#include <gtest/gtest.h>

#include <exception>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <fcntl.h>
#include <poll.h>
#include <stdexcept>
#include <string>
#include <utility>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace presence::testing {

class node_process {
public:
  /// Starts presenced with `args` (plus --node.http_port=0 and a fresh data dir)
  /// and waits up to 20 s until it is ready (recovered).
  explicit node_process(std::vector<std::string> args) : args_(std::move(args)) {
    char dir_template[] = "/tmp/presenced-test-XXXXXX";
    data_dir_ = mkdtemp(dir_template);
    launch();
  }

  /// Starts presenced again on the same data directory (after `stop()` or
  /// `kill()`), with the same arguments plus `extra`; waits until it is ready.
  void restart(std::vector<std::string> extra = {}) {
    check_sanitizers();
    if (out_ >= 0)
      close(out_);
    out_ = -1;
    port_ = 0;
    log_.clear();
    launch(std::move(extra));
  }

  /// Starts presenced and returns when it exits or `timeout_ms` passed, with
  /// its output (for start-up errors). `args` are complete but for the binary.
  static std::pair<int, std::string> run_to_exit(std::vector<std::string> args,
                                                 int timeout_ms = 20000) {
    node_process p;
    p.args_ = std::move(args);
    p.spawn({}, false);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds{timeout_ms};
    while (std::chrono::steady_clock::now() < deadline) {
      p.read_some(20);
      int status = 0;
      if (waitpid(p.pid_, &status, WNOHANG) == p.pid_) {
        p.pid_ = -1;
        while (p.read_some(0)) {
        }
        return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, p.log_};
      }
    }
    return {-1, p.log_};
  }

  const std::string& data_dir() const { return data_dir_; }

  ~node_process() {
    check_sanitizers();
    // A failed test shows what its nodes said (a sanitizer's report, a crash).
    if ((::testing::Test::HasFailure() || std::uncaught_exceptions() > 0) && out_ >= 0) {
      auto& text = log();
      auto tail = text.size() > 6000 ? text.substr(text.size() - 6000) : text;
      std::fprintf(stderr, "---- log of presenced %s (last %zu bytes) ----\n%s\n", args_.empty() ? "" : args_.front().c_str(),
                   tail.size(), tail.c_str());
    }
    if (pid_ > 0 && !exited()) {
      ::kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (out_ >= 0)
      close(out_);
    if (!data_dir_.empty()) {
      std::string cmd = "rm -rf '" + data_dir_ + "'";
      if (std::system(cmd.c_str()) != 0)
        std::perror("rm");
    }
  }

  /// SIGKILL: the process dies without flushing anything.
  void kill() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }

  uint16_t port() const { return port_; }

  /// SIGSTOP / SIGCONT: a hang (a long GC-like pause) and its end.
  void pause() { ::kill(pid_, SIGSTOP); }
  void resume() { ::kill(pid_, SIGCONT); }

  /// Waits up to `timeout_ms` for the process to exit by itself; returns its
  /// exit status, or -1 (still running, or killed by a signal).
  int wait_exit(int timeout_ms) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds{timeout_ms};
    while (pid_ > 0 && std::chrono::steady_clock::now() < deadline) {
      read_some(20);
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
    }
    return -1;
  }

  /// Sends SIGTERM and waits up to 10 s; returns the exit status (or -1).
  int stop() {
    ::kill(pid_, SIGTERM);
    return wait_exit(10000);
  }

  /// The port of its cluster (CAF) endpoint, from its log.
  uint16_t cluster_port() {
    auto& text = log();
    auto pos = text.find("cluster listening on ");
    if (pos == std::string::npos)
      return 0;
    auto colon = text.find(':', pos + 21);
    return static_cast<uint16_t>(std::stoi(text.substr(colon + 1)));
  }

  /// Fails the test if the node's output holds a sanitizer's report (a node of
  /// a sanitizer build reports on its own output, which no test read before: a
  /// data race in a node passed unseen unless it changed what a client saw).
  void check_sanitizers() {
    if (out_ < 0)
      return;
    auto& text = log();
    for (const char* mark : {"WARNING: ThreadSanitizer", "ERROR: AddressSanitizer",
                             "ERROR: LeakSanitizer", "runtime error:"}) {
      auto at = text.find(mark);
      if (at != std::string::npos)
        ADD_FAILURE() << "presenced " << (args_.empty() ? "" : args_.front())
                      << " reported: " << text.substr(at, 4000);
    }
  }

  /// Everything the process printed so far.
  const std::string& log() {
    while (read_some(0)) {
    }
    return log_;
  }

private:
  node_process() = default;

  void spawn(std::vector<std::string> extra, bool with_defaults) {
    std::vector<std::string> args;
    args.push_back(PRESENCED_BINARY);
    if (with_defaults) {
      args.insert(args.end(), {"--node.http_port=0", "--node.data_dir=" + data_dir_});
      bool has_id = false;
      bool has_cluster_port = false; // nodes that must know each other's first
      for (auto& a : args_) {
        has_id = has_id || a.rfind("--node.id=", 0) == 0;
        has_cluster_port = has_cluster_port || a.rfind("--node.cluster_port=", 0) == 0;
      }
      if (!has_cluster_port)
        args.push_back("--node.cluster_port=0");
      if (!has_id)
        args.push_back("--node.id=test");
    }
    args.insert(args.end(), args_.begin(), args_.end());
    args.insert(args.end(), extra.begin(), extra.end());
    int fds[2];
    if (pipe(fds) != 0)
      throw std::runtime_error("pipe failed");
    pid_ = fork();
    if (pid_ == 0) {
      dup2(fds[1], STDOUT_FILENO);
      dup2(fds[1], STDERR_FILENO);
      close(fds[0]);
      close(fds[1]);
      std::vector<char*> argv;
      for (auto& a : args)
        argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(fds[1]);
    out_ = fds[0];
  }

  // Spawns and waits for the port line, then for "ready" (recovery done).
  void launch(std::vector<std::string> extra = {}) {
    spawn(std::move(extra), true);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{20};
    while (port_ == 0 || log_.find("] ready") == std::string::npos) {
      if (std::chrono::steady_clock::now() > deadline)
        throw std::runtime_error("presenced did not start: " + log_);
      if (!read_some(100) && exited())
        throw std::runtime_error("presenced exited: " + log_);
      auto pos = log_.find("http listening on ");
      if (port_ == 0 && pos != std::string::npos) {
        auto colon = log_.find(':', pos + 18);
        auto end = log_.find('\n', colon);
        if (colon != std::string::npos && end != std::string::npos)
          port_ = static_cast<uint16_t>(std::stoi(log_.substr(colon + 1, end - colon - 1)));
      }
    }
  }

  bool read_some(int timeout_ms) {
    pollfd p{out_, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0)
      return false;
    char buf[4096];
    auto n = ::read(out_, buf, sizeof(buf));
    if (n <= 0)
      return false;
    log_.append(buf, static_cast<size_t>(n));
    return true;
  }

  bool exited() {
    if (pid_ <= 0)
      return true;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return true;
    }
    return false;
  }

  pid_t pid_ = -1;
  int out_ = -1;
  uint16_t port_ = 0;
  std::string log_;
  std::string data_dir_;
  std::vector<std::string> args_;
};

} // namespace presence::testing
