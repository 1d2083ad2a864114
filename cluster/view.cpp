#include "cluster/view.hpp"

#include <algorithm>

namespace presence::cluster {

const member_info* view::leader() const {
  return members.empty() ? nullptr : &members.front();
}

const member_info* view::find(const std::string& id) const {
  for (auto& m : members)
    if (m.id == id)
      return &m;
  return nullptr;
}

const member_info* view::find(const caf::actor_addr& who) const {
  for (auto& m : members)
    if (m.handle && m.handle.address() == who)
      return &m;
  return nullptr;
}

std::vector<std::string> view::ids() const {
  std::vector<std::string> out;
  for (auto& m : members)
    out.push_back(m.id);
  return out;
}

std::vector<std::string> view::owner_ids() const {
  std::vector<std::string> out;
  for (auto& m : members)
    if (!m.draining)
      out.push_back(m.id);
  return out;
}

member_counts count_members(const view& v, const std::set<std::string>& down) {
  member_counts out;
  for (auto& m : v.members)
    if (down.count(m.id) > 0)
      ++out.unreachable;
    else if (m.draining)
      ++out.draining;
    else
      ++out.up;
  return out;
}

view with_member(const view& v, member_info m) {
  view next{v.epoch + 1, {}};
  for (auto& x : v.members)
    if (x.id != m.id)
      next.members.push_back(x);
  next.members.push_back(std::move(m));
  std::sort(next.members.begin(), next.members.end(),
            [](const member_info& a, const member_info& b) { return a.id < b.id; });
  return next;
}

bool keeps_majority(const view& before, const view& after) {
  size_t kept = 0;
  bool smallest = false;
  for (auto& m : after.members)
    if (before.find(m.id) != nullptr) {
      ++kept;
      smallest = smallest || (before.leader() != nullptr && before.leader()->id == m.id);
    }
  auto total = before.members.size();
  return 2 * kept > total || (2 * kept == total && smallest);
}

std::optional<view> without_member(const view& v, const std::string& id) {
  if (v.find(id) == nullptr)
    return std::nullopt;
  view next{v.epoch + 1, {}};
  for (auto& x : v.members)
    if (x.id != id)
      next.members.push_back(x);
  return next;
}

std::optional<view> with_draining(const view& v, const std::string& id) {
  auto* m = v.find(id);
  if (m == nullptr || m->draining)
    return std::nullopt;
  view next = v;
  next.epoch = v.epoch + 1;
  for (auto& x : next.members)
    if (x.id == id)
      x.draining = true;
  return next;
}

view renumbered(const view& v) {
  view next = v;
  next.epoch = v.epoch + 1;
  return next;
}

} // namespace presence::cluster
