#include "actors/clock.hpp"

#include <chrono>

namespace presence::actors {

clock::clock(const caf::actor_clock& source, int64_t wall_start_ms)
  : source_(&source), start_(source.now()), wall_start_ms_(wall_start_ms) {
}

int64_t clock::now_ms() const {
  auto elapsed = source_->now() - start_;
  return wall_start_ms_
         + std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count();
}

int64_t clock::system_now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch())
    .count();
}

} // namespace presence::actors
