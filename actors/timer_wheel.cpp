#include "actors/timer_wheel.hpp"

#include <cassert>

namespace presence::actors {

timer_wheel::timer_wheel(int64_t tick_ms, size_t slots, int64_t start_ms)
  : tick_ms_(tick_ms), current_tick_(start_ms / tick_ms), heads_(slots, nullptr) {
  assert(tick_ms > 0 && slots > 0);
}

int64_t timer_wheel::tick_of(int64_t ms) const {
  // Round up: an entry never fires before its due time.
  auto t = ms / tick_ms_;
  if (t * tick_ms_ < ms)
    ++t;
  return t;
}

void timer_wheel::schedule(wheel_entry& e, int64_t due_ms) {
  if (e.linked)
    unlink(e);
  e.due_ms = due_ms;
  e.due_tick = tick_of(due_ms);
  if (e.due_tick <= current_tick_)
    e.due_tick = current_tick_ + 1;
  link(e, static_cast<size_t>(e.due_tick % static_cast<int64_t>(heads_.size())));
}

void timer_wheel::cancel(wheel_entry& e) {
  if (e.linked)
    unlink(e);
}

void timer_wheel::link(wheel_entry& e, size_t slot) {
  e.prev = nullptr;
  e.next = heads_[slot];
  if (e.next != nullptr)
    e.next->prev = &e;
  heads_[slot] = &e;
  e.linked = true;
  ++size_;
}

void timer_wheel::unlink(wheel_entry& e) {
  if (e.prev != nullptr) {
    e.prev->next = e.next;
  } else {
    auto slot = static_cast<size_t>(e.due_tick % static_cast<int64_t>(heads_.size()));
    assert(heads_[slot] == &e);
    heads_[slot] = e.next;
  }
  if (e.next != nullptr)
    e.next->prev = e.prev;
  e.prev = e.next = nullptr;
  e.linked = false;
  --size_;
}

} // namespace presence::actors
