// Durable storage of entity snapshots: one keyspace per entity kind, records
// written in batches. `store` is the interface the node uses; `rocksdb_store` is
// the real one (the only file that includes RocksDB) and `memory_store` the
// in-memory twin for tests. Implementations are thread-safe for concurrent
// `write` and `scan`; a store is opened once at start and closed at stop.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace presence::storage {

/// Entity kinds, one keyspace (RocksDB column family) each.
enum class kind : uint8_t { sessions = 0, users, rooms, intents, timeline };

inline constexpr kind all_kinds[] = {kind::sessions, kind::users, kind::rooms,
                                     kind::intents, kind::timeline};

std::string_view to_string(kind k);

/// One change: put `value` at `key`, or delete `key` when `value` is empty.
struct mutation {
  kind k = kind::sessions;
  std::string key;
  std::optional<std::string> value;
};

/// The outcome of a store operation: empty when it worked, else why (naming the
/// path or key involved).
using status = std::optional<std::string>;

class store {
public:
  virtual ~store() = default;

  /// Applies the mutations atomically, in order (one batch).
  virtual status write(const std::vector<mutation>& batch) = 0;

  /// Calls `f(key, value)` for every record of kind `k`, in key order.
  virtual status scan(kind k,
                      const std::function<void(std::string_view, std::string_view)>& f)
    = 0;

  /// Reads one record.
  virtual std::optional<std::string> get(kind k, std::string_view key) = 0;

  /// Approximate bytes on disk: live SST files plus memtables (for memory: the
  /// bytes of keys and values held).
  virtual uint64_t size_bytes() = 0;

  /// Compacts every keyspace, dropping deleted records (benchmarks, operators).
  virtual void compact() {}
};

/// Opens (creating if needed) the RocksDB database in `dir`. Fails with a message
/// naming the path when it is missing and cannot be created, not writable, or
/// locked by another running node.
std::unique_ptr<store> open_rocksdb(const std::string& dir, status* why);

/// An in-memory store for tests. While `*fail_writes` is true every write fails
/// (fault injection, as a full or broken disk would).
std::unique_ptr<store>
make_memory_store(std::shared_ptr<std::atomic<bool>> fail_writes = nullptr);

} // namespace presence::storage
