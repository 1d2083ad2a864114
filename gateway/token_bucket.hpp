// A token bucket: `rate` tokens per second, holding at most `rate`. Used for
// limits.signals_per_second per socket and per HTTP connection. Not thread-safe:
// each connection owns one and uses it on its strand.
#pragma once

#include <algorithm>
#include <chrono>

namespace presence::gateway {

class token_bucket {
public:
  using clock = std::chrono::steady_clock;

  token_bucket(double rate, clock::time_point now = clock::now())
    : rate_(rate), tokens_(rate), last_(now) {}

  /// Takes one token if there is one at `now`.
  bool take(clock::time_point now = clock::now()) {
    auto dt = std::chrono::duration<double>(now - last_).count();
    last_ = std::max(last_, now);
    tokens_ = std::min(rate_, tokens_ + std::max(0.0, dt) * rate_);
    if (tokens_ < 1.0)
      return false;
    tokens_ -= 1.0;
    return true;
  }

private:
  double rate_;
  double tokens_;
  clock::time_point last_;
};

} // namespace presence::gateway
