// Starting and stopping the programs a benchmark measures (presenced, or the
// benchmark itself in another role), and reading their CPU time and memory from
// /proc. For benchmarks only: it exits the process on failure.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

namespace presence::bench {

using clk = std::chrono::steady_clock;

struct child {
  pid_t pid = -1;
  int out = -1;
  uint16_t port = 0;
  std::string log; ///< what it printed until it was ready
};

// Starts `args`, reads the port after `ready_marker`, then (if set) waits for
// `then` in its output too (presenced: "] ready", once it recovered).
inline child spawn(std::vector<std::string> args, const std::string& ready_marker,
            const char* then = nullptr) {
  int fds[2];
  if (pipe(fds) != 0)
    std::exit(1);
  child c;
  c.pid = fork();
  if (c.pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    dup2(fds[1], STDERR_FILENO);
    close(fds[0]);
    std::vector<char*> argv;
    for (auto& a : args)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(fds[1]);
  c.out = fds[0];
  auto& log = c.log;
  auto deadline = clk::now() + std::chrono::seconds{20};
  auto done = [&] {
    return c.port != 0 && (then == nullptr || log.find(then) != std::string::npos);
  };
  while (!done() && clk::now() < deadline) {
    pollfd p{c.out, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0)
      continue;
    char buf[4096];
    auto n = read(c.out, buf, sizeof(buf));
    if (n <= 0)
      break;
    log.append(buf, static_cast<size_t>(n));
    auto pos = log.find(ready_marker);
    if (c.port == 0 && pos != std::string::npos) {
      auto colon = log.find(':', pos + ready_marker.size());
      auto end = log.find('\n', colon);
      if (end != std::string::npos)
        c.port = static_cast<uint16_t>(std::stoi(log.substr(colon + 1, end - colon - 1)));
    }
  }
  if (!done()) {
    std::fprintf(stderr, "could not start %s: %s\n", args[0].c_str(), log.c_str());
    std::exit(1);
  }
  return c;
}

inline void stop(child& c) {
  kill(c.pid, SIGTERM);
  waitpid(c.pid, nullptr, 0);
  close(c.out);
}

inline double cpu_seconds(pid_t pid) {
  std::ifstream in{"/proc/" + std::to_string(pid) + "/stat"};
  std::string s((std::istreambuf_iterator<char>(in)), {});
  auto rparen = s.rfind(')');
  std::istringstream rest{s.substr(rparen + 2)};
  std::string field;
  long utime = 0, stime = 0;
  for (int i = 3; i <= 15; ++i) {
    rest >> field;
    if (i == 14)
      utime = std::stol(field);
    if (i == 15)
      stime = std::stol(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

inline double rss_mib(pid_t pid) {
  std::ifstream in{"/proc/" + std::to_string(pid) + "/statm"};
  long size = 0, resident = 0;
  in >> size >> resident;
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE))
         / (1024.0 * 1024.0);
}


} // namespace presence::bench
