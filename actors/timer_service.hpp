// Decay timers for every entity of a node: one pending wake-up per entity at its
// next boundary, kept in shards of hashed timing wheels (each behind its own
// mutex), advanced every `node.timer_tick_ms` by one ticker actor that sends
// (wake_atom, generation) to each due entity. Arming or moving a timer is an O(1)
// relink under a shard lock: no CAF clock entry and no message per signal, so a
// session that keeps signalling costs nothing here and never fires.
//
// Threading: `arm` and `disarm` are called by the actor that owns the slot; the
// ticker calls `advance`. A wake that was in flight while its slot was re-armed
// carries an old generation and must be ignored by the actor
// (`timer_slot::is_current`).
#pragma once

#include "actors/timer_wheel.hpp"

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/fwd.hpp>

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace presence::actors {

class clock;
class timer_service;

/// One entity's timer, embedded in the entity's actor state. Neither copyable nor
/// movable (the wheel links to it). Disarms itself when destroyed.
class timer_slot {
public:
  timer_slot() = default;
  explicit timer_slot(timer_service& service) : service_(&service) {}
  ~timer_slot();

  /// Attaches a default-constructed slot to its service (once, before `arm`).
  /// An entity with several slots gives each its own `tag` (0..255): the tag is
  /// part of every generation, so a wake is current for one slot only.
  void bind(timer_service& service, uint8_t tag = 0) {
    service_ = &service;
    tag_ = tag;
  }
  timer_slot(const timer_slot&) = delete;
  timer_slot& operator=(const timer_slot&) = delete;

  /// Wakes `self` with (wake_atom, generation) at or after `due_ms`; replaces any
  /// earlier arming.
  void arm(caf::actor self, int64_t due_ms);

  /// Cancels the pending wake-up, if any.
  void disarm();

  /// True if a wake carrying `generation` is the current arming (not stale);
  /// consumes it, so the slot is disarmed afterwards.
  bool is_current(uint64_t generation);

  /// True while a wake-up is pending.
  bool armed() const { return armed_; }

  /// The due time of the pending wake-up.
  int64_t due_ms() const { return due_ms_; }

private:
  friend class timer_service;
  struct entry : wheel_entry {
    caf::actor target;
    uint64_t generation = 0;
  };
  timer_service* service_ = nullptr;
  entry entry_;             // guarded by the shard's mutex
  uint64_t generation_ = 0; // owned by the actor; low 8 bits are the tag
  uint8_t tag_ = 0;
  int64_t due_ms_ = 0;      // owned by the actor
  bool armed_ = false;      // owned by the actor
};

class timer_service {
public:
  /// `tick_ms` is the resolution; `start_ms` the current time.
  timer_service(int64_t tick_ms, int64_t start_ms, size_t shards = 16,
                size_t slots_per_shard = 4096);
  ~timer_service();

  timer_service(const timer_service&) = delete;
  timer_service& operator=(const timer_service&) = delete;

  /// Sends a wake to every entity due at or before `now_ms`; returns how many.
  size_t advance(int64_t now_ms);

  /// Pending wake-ups.
  size_t armed() const;

  /// Drops every pending wake-up (shutdown: releases the references to actors).
  void clear();

  int64_t tick_ms() const { return tick_ms_; }

  /// Spawns the actor that calls `advance(clk.now_ms())` every tick on CAF's clock.
  /// Stop it with an exit message (or `caf::anon_send_exit`).
  caf::actor spawn_ticker(caf::actor_system& sys, const clock& clk);

private:
  friend class timer_slot;
  struct shard {
    explicit shard(int64_t tick_ms, size_t slots, int64_t start_ms)
      : wheel(tick_ms, slots, start_ms) {}
    std::mutex mtx;
    timer_wheel wheel; // guarded by mtx
  };

  shard& shard_of(const timer_slot& s);
  void arm(timer_slot& s, caf::actor self, int64_t due_ms, uint64_t generation);
  void disarm(timer_slot& s);

  int64_t tick_ms_;
  std::vector<std::unique_ptr<shard>> shards_;
};

} // namespace presence::actors
