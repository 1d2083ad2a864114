#include "actors/timer_service.hpp"

#include "actors/census.hpp"

#include "actors/clock.hpp"
#include "actors/messages.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>

#include <chrono>
#include <functional>

namespace presence::actors {

timer_slot::~timer_slot() {
  disarm();
}

void timer_slot::arm(caf::actor self, int64_t due_ms) {
  generation_ = (((generation_ >> 8) + 1) << 8) | tag_;
  due_ms_ = due_ms;
  armed_ = true;
  service_->arm(*this, std::move(self), due_ms, generation_);
}

void timer_slot::disarm() {
  if (!armed_)
    return;
  armed_ = false;
  generation_ = (((generation_ >> 8) + 1) << 8) | tag_; // a wake in flight is stale
  service_->disarm(*this);
}

bool timer_slot::is_current(uint64_t generation) {
  if (!armed_ || generation != generation_)
    return false;
  armed_ = false;
  return true;
}

timer_service::timer_service(int64_t tick_ms, int64_t start_ms, size_t shards,
                             size_t slots_per_shard)
  : tick_ms_(tick_ms) {
  for (size_t i = 0; i < shards; ++i)
    shards_.push_back(std::make_unique<shard>(tick_ms, slots_per_shard, start_ms));
}

timer_service::~timer_service() {
  clear();
}

timer_service::shard& timer_service::shard_of(const timer_slot& s) {
  auto h = std::hash<const void*>{}(&s) >> 4;
  return *shards_[h % shards_.size()];
}

void timer_service::arm(timer_slot& s, caf::actor self, int64_t due_ms,
                        uint64_t generation) {
  auto& sh = shard_of(s);
  std::lock_guard<std::mutex> guard{sh.mtx};
  s.entry_.generation = generation;
  if (!s.entry_.linked)
    s.entry_.target = std::move(self);
  sh.wheel.schedule(s.entry_, due_ms);
}

void timer_service::disarm(timer_slot& s) {
  caf::actor released;
  auto& sh = shard_of(s);
  std::lock_guard<std::mutex> guard{sh.mtx};
  if (s.entry_.linked) {
    sh.wheel.cancel(s.entry_);
    released = std::move(s.entry_.target); // dropped after the lock is released
  }
}

size_t timer_service::advance(int64_t now_ms) {
  struct due {
    caf::actor target;
    uint64_t generation;
  };
  thread_local std::vector<due> fired;
  fired.clear();
  for (auto& sh : shards_) {
    std::lock_guard<std::mutex> guard{sh->mtx};
    sh->wheel.advance(now_ms, [&](wheel_entry& e) {
      auto& x = static_cast<timer_slot::entry&>(e);
      fired.push_back(due{std::move(x.target), x.generation});
    });
  }
  for (auto& d : fired)
    caf::anon_send(d.target, wake_atom::value, d.generation);
  auto n = fired.size();
  fired.clear();
  return n;
}

size_t timer_service::armed() const {
  size_t n = 0;
  for (auto& sh : shards_) {
    std::lock_guard<std::mutex> guard{sh->mtx};
    n += sh->wheel.size();
  }
  return n;
}

void timer_service::clear() {
  std::vector<caf::actor> released;
  for (auto& sh : shards_) {
    std::lock_guard<std::mutex> guard{sh->mtx};
    sh->wheel.drain([&](wheel_entry& e) {
      released.push_back(std::move(static_cast<timer_slot::entry&>(e).target));
    });
  }
}

caf::actor timer_service::spawn_ticker(caf::actor_system& sys, const clock& clk) {
  // Arguments are passed to spawn rather than captured: CAF 0.17 dereferences a
  // null tuple pointer when a function actor is spawned without any (UBSan).
  auto ticker = [](caf::event_based_actor* self, timer_service* svc,
                   const clock* c) -> caf::behavior {
    census::track(self, census::kind::ticker);
    auto tick = std::chrono::milliseconds{svc->tick_ms()};
    self->send(self, tick_atom::value);
    return {
      [self, svc, c, tick](tick_atom) {
        svc->advance(c->now_ms());
        self->delayed_send(self, tick, tick_atom::value);
      },
    };
  };
  return sys.spawn(ticker, this, &clk);
}

} // namespace presence::actors
