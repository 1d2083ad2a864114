// The consistent-hash ring: which node owns an entity key. Pure and deterministic:
// every node computes the same owner for a key from the same membership, with no
// shared state. Each node has `vnodes` points on a 64-bit circle (xxHash3 of
// "<node id>#<i>"); a key is hashed with `probes` seeds and belongs to the point
// closest after any of its probes (multi-probe consistent hashing). With 128
// virtual nodes and 8 probes a node's share deviates by ~3% (1/sqrt(128 * 8))
// instead of the ~9% of a single probe, and adding or removing a node still moves
// only the keys that the node gains or loses. A key's replicas are its owners in
// the rings without the nodes before them (the owner, then who would own it if
// the owner left, ...): when an owner dies, its first replica takes over. Immutable once built; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace presence::cluster {

/// The 64-bit hash of a key (xxHash3) with `seed`.
uint64_t hash_key(std::string_view key, uint64_t seed = 0);

class ring {
public:
  static constexpr size_t default_vnodes = 128;
  static constexpr size_t probes = 8;

  /// An empty ring: owns nothing.
  ring() = default;

  /// A ring of `nodes` (ids, any order; duplicates count once).
  ring(std::vector<std::string> nodes, size_t vnodes = default_vnodes);

  /// The node that owns `key`; empty if the ring is empty.
  const std::string& owner(std::string_view key) const;

  /// The owner, then who would own the key without it, and so on: at most `n`
  /// distinct ids.
  std::vector<std::string> owners(std::string_view key, size_t n) const;

  /// Node ids, sorted.
  const std::vector<std::string>& nodes() const { return nodes_; }

  bool empty() const { return nodes_.empty(); }
  size_t vnodes() const { return vnodes_; }

  /// True if `id` is a member.
  bool contains(std::string_view id) const;

private:
  struct point {
    uint64_t at;
    uint32_t node; // index into nodes_
  };

  // The index in points_ of the point that owns `key`, skipping the points of
  // nodes marked in `excluded` (empty: none).
  size_t owning_point(std::string_view key, const std::vector<bool>& excluded) const;

  std::vector<std::string> nodes_;
  std::vector<point> points_; // sorted by `at`
  size_t vnodes_ = default_vnodes;
};

} // namespace presence::cluster
