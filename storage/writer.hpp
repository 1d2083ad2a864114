// The write-behind snapshot writer. Actors hand it changed records (`put`) and
// deletions (`erase`) from any thread; it keeps only the latest change per key
// and writes everything pending as one atomic batch at most every
// `flush_interval_ms`, on its own thread. Nothing an actor does waits for disk:
// `put` encodes the record (a few hundred nanoseconds) and moves the bytes into
// a sharded map under a short lock. `stop()` writes everything still pending (SIGTERM); a crash
// loses at most the changes of the last interval. A batch that fails to write is
// kept (newer changes win) and retried at the next flush, so a full disk loses
// nothing while it lasts.
//
// Threading: `put`, `erase` and the counters are safe from any thread. `start`,
// `stop` and `flush` are called by the owner (`flush` also by the flush thread).
#pragma once

#include "storage/records.hpp"
#include "storage/store.hpp"

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

namespace presence::storage {

/// Counters of a writer, for /metrics and benchmarks.
struct writer_stats {
  std::atomic<uint64_t> changes{0};        ///< puts and erases handed in
  std::atomic<uint64_t> records_written{0}; ///< puts and deletes written
  std::atomic<uint64_t> bytes_written{0};  ///< value bytes written
  std::atomic<uint64_t> batches{0};        ///< batches written
  std::atomic<uint64_t> write_errors{0};   ///< batches that failed (kept for retry)
  std::atomic<uint64_t> last_flush_us{0};  ///< duration of the latest flush
};

class snapshot_writer {
public:
  /// Called with a message when a batch fails (from the flushing thread).
  using error_fn = std::function<void(const std::string&)>;

  /// Records written per WriteBatch at most (a larger backlog takes several).
  static constexpr size_t max_batch_records = 20000;

  snapshot_writer(store& s, int64_t flush_interval_ms, error_fn on_error = {});
  ~snapshot_writer();

  snapshot_writer(const snapshot_writer&) = delete;
  snapshot_writer& operator=(const snapshot_writer&) = delete;

  /// Starts the flush thread (without it, nothing is written until `flush`).
  void start();

  /// Stops the flush thread and writes everything pending. Idempotent.
  void stop();

  /// Replaces whatever is pending for the record's key.
  void put(record r);

  /// Deletes `key` of kind `k` (replacing a pending put).
  void erase(kind k, std::string key);

  /// Writes everything pending now; returns the number of records written
  /// (0 when nothing was pending or the write failed).
  size_t flush();

  /// Changes handed in and not yet taken by a flush.
  size_t pending() const;

  /// Changes not yet on disk: pending plus those a running flush is writing.
  size_t unwritten() const;

  const writer_stats& stats() const { return stats_; }
  int64_t flush_interval_ms() const { return interval_ms_; }

private:
  static constexpr size_t shard_count = 16;
  using change = std::optional<std::string>; // encoded record; nothing: delete
  using change_map = std::unordered_map<std::string, change>;
  struct shard {
    mutable std::mutex mtx;
    change_map changes; // guarded by mtx; key: kind byte + entity key
  };

  // The key of a change in the pending maps: the kind byte, then the key.
  static std::string full_key(kind k, std::string_view key);
  shard& shard_of(const std::string& full_key);
  void submit(std::string full_key, change c);
  void run();

  store& store_;
  int64_t interval_ms_;
  error_fn on_error_;
  std::array<shard, shard_count> shards_;
  writer_stats stats_;
  std::mutex flush_mtx_; // one flush at a time
  std::mutex run_mtx_;
  std::condition_variable run_cv_;
  bool stopping_ = false; // guarded by run_mtx_
  std::atomic<size_t> in_flight_{0};
  std::thread thread_;
};

} // namespace presence::storage
