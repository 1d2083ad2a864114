#include "cluster/ring.hpp"

#include <xxhash.h>

#include <algorithm>

namespace presence::cluster {

namespace {

const std::string no_owner;

// Seeds of the probes: fixed, so that every node computes the same owners.
constexpr uint64_t probe_seed(size_t i) {
  return 0x9e3779b97f4a7c15ULL * (i + 1);
}

} // namespace

uint64_t hash_key(std::string_view key, uint64_t seed) {
  return XXH3_64bits_withSeed(key.data(), key.size(), seed);
}

ring::ring(std::vector<std::string> nodes, size_t vnodes)
  : nodes_(std::move(nodes)), vnodes_(std::max<size_t>(1, vnodes)) {
  std::sort(nodes_.begin(), nodes_.end());
  nodes_.erase(std::unique(nodes_.begin(), nodes_.end()), nodes_.end());
  points_.reserve(nodes_.size() * vnodes_);
  for (uint32_t n = 0; n < nodes_.size(); ++n)
    for (size_t i = 0; i < vnodes_; ++i)
      points_.push_back({hash_key(nodes_[n] + "#" + std::to_string(i)), n});
  // Ties (astronomically rare) are broken by node id, so the order is total.
  std::sort(points_.begin(), points_.end(), [this](const point& a, const point& b) {
    return a.at != b.at ? a.at < b.at : nodes_[a.node] < nodes_[b.node];
  });
}

size_t ring::owning_point(std::string_view key, const std::vector<bool>& excluded) const {
  size_t best = 0;
  uint64_t best_distance = UINT64_MAX;
  for (size_t p = 0; p < probes; ++p) {
    auto h = hash_key(key, probe_seed(p));
    auto it = std::lower_bound(points_.begin(), points_.end(), h,
                               [](const point& x, uint64_t v) { return x.at < v; });
    size_t index = it == points_.end() ? 0 : static_cast<size_t>(it - points_.begin());
    if (!excluded.empty())
      for (size_t k = 0; k < points_.size() && excluded[points_[index].node]; ++k)
        index = (index + 1) % points_.size();
    auto distance = points_[index].at - h; // wraps around the circle
    if (distance < best_distance
        || (distance == best_distance && index < best)) {
      best_distance = distance;
      best = index;
    }
  }
  return best;
}

const std::string& ring::owner(std::string_view key) const {
  if (points_.empty())
    return no_owner;
  return nodes_[points_[owning_point(key, {})].node];
}

std::vector<std::string> ring::owners(std::string_view key, size_t n) const {
  std::vector<std::string> out;
  if (points_.empty() || n == 0)
    return out;
  n = std::min(n, nodes_.size());
  std::vector<bool> taken(nodes_.size(), false);
  while (out.size() < n) {
    auto node = points_[owning_point(key, taken)].node;
    taken[node] = true;
    out.push_back(nodes_[node]);
  }
  return out;
}

bool ring::contains(std::string_view id) const {
  return std::binary_search(nodes_.begin(), nodes_.end(), id,
                            [](const auto& a, const auto& b) {
                              return std::string_view{a} < std::string_view{b};
                            });
}

} // namespace presence::cluster
