#include "actors/census.hpp"

#include <array>
#include <atomic>

namespace presence::actors::census {

namespace {

// One process, one count: the actors of every node in it (a process runs one
// node; tests that run several see their sum).
std::array<std::atomic<int64_t>, kind_count>& counts() {
  static std::array<std::atomic<int64_t>, kind_count> xs{};
  return xs;
}

} // namespace

const char* name(kind k) {
  static constexpr std::array<const char*, kind_count> names{
    "user",    "room",   "session", "intent",     "forwarder",  "passivated", "stub",
    "handoff", "request", "socket", "fanout",     "membership", "traffic",
    "replicator", "ticker",  "helper"};
  return names[static_cast<size_t>(k)];
}

token::token(kind k) : kind_(k) {
  counts()[static_cast<size_t>(k)].fetch_add(1, std::memory_order_relaxed);
}

token::~token() {
  counts()[static_cast<size_t>(kind_)].fetch_sub(1, std::memory_order_relaxed);
}

void track(caf::scheduled_actor* self, kind k) {
  auto& slot = counts()[static_cast<size_t>(k)];
  slot.fetch_add(1, std::memory_order_relaxed);
  self->attach_functor([&slot] { slot.fetch_sub(1, std::memory_order_relaxed); });
}

int64_t live(kind k) {
  return counts()[static_cast<size_t>(k)].load(std::memory_order_relaxed);
}

std::string summary() {
  std::string out;
  for (size_t i = 0; i < kind_count; ++i) {
    auto n = counts()[i].load(std::memory_order_relaxed);
    if (n == 0)
      continue;
    if (!out.empty())
      out += ", ";
    out += std::to_string(n) + " " + name(static_cast<kind>(i));
  }
  return out.empty() ? "none" : out;
}

} // namespace presence::actors::census
