// A hashed timing wheel with intrusive entries: O(1) schedule and cancel, and an
// advance whose cost is the number of slots passed plus the entries visited in
// them. Pure and single-threaded: `timer_service` wraps shards of it in locks.
// Times are milliseconds; an entry due at t fires on the first advance to a time
// >= t (so it fires at most one tick late when advanced every tick).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace presence::actors {

/// A node of the wheel's intrusive lists. Embed it in the object it times.
struct wheel_entry {
  wheel_entry* prev = nullptr;
  wheel_entry* next = nullptr;
  int64_t due_ms = 0;
  int64_t due_tick = 0;
  bool linked = false;
};

class timer_wheel {
public:
  /// `tick_ms` is the resolution, `slots` the number of buckets (a power of two
  /// is not required), `start_ms` the time of the first tick.
  timer_wheel(int64_t tick_ms, size_t slots, int64_t start_ms);

  timer_wheel(const timer_wheel&) = delete;
  timer_wheel& operator=(const timer_wheel&) = delete;

  /// Links `e` to fire at `due_ms`, unlinking it first if it was scheduled.
  /// A due time in the past fires on the next advance.
  void schedule(wheel_entry& e, int64_t due_ms);

  /// Unlinks `e` if scheduled; does nothing otherwise.
  void cancel(wheel_entry& e);

  /// Moves time to `now_ms` and calls `fire(wheel_entry&)` for every entry due at
  /// or before it, after unlinking it (so `fire` may schedule it again).
  /// Returns the number fired.
  template <class F>
  size_t advance(int64_t now_ms, F&& fire);

  /// Unlinks every entry, calling `f(wheel_entry&)` for each; time stays.
  template <class F>
  void drain(F&& f);

  /// Scheduled entries.
  size_t size() const { return size_; }

  /// The time the wheel has been advanced to.
  int64_t now_ms() const { return current_tick_ * tick_ms_; }

private:
  int64_t tick_of(int64_t ms) const;
  void link(wheel_entry& e, size_t slot);
  void unlink(wheel_entry& e);

  int64_t tick_ms_;
  int64_t current_tick_;
  std::vector<wheel_entry*> heads_;
  std::vector<wheel_entry*> due_; // scratch space of advance
  size_t size_ = 0;
};

template <class F>
size_t timer_wheel::advance(int64_t now_ms, F&& fire) {
  auto target = now_ms / tick_ms_;
  if (target <= current_tick_)
    return 0;
  auto steps = target - current_tick_;
  auto n = static_cast<int64_t>(heads_.size());
  if (steps > n)
    steps = n; // every slot once is enough: the due check below is absolute
  due_.clear();
  for (int64_t i = 1; i <= steps; ++i) {
    auto slot = static_cast<size_t>((current_tick_ + i) % n);
    auto* e = heads_[slot];
    while (e != nullptr) {
      auto* next = e->next;
      if (e->due_tick <= target) {
        unlink(*e);
        due_.push_back(e);
      }
      e = next;
    }
  }
  current_tick_ = target;
  // Fired after the time moved, so that an entry scheduled again from `fire`
  // lands in the future and cannot fire twice in one advance.
  for (auto* e : due_)
    fire(*e);
  return due_.size();
}

template <class F>
void timer_wheel::drain(F&& f) {
  for (auto& head : heads_) {
    while (head != nullptr) {
      auto* e = head;
      unlink(*e);
      f(*e);
    }
  }
}

} // namespace presence::actors
