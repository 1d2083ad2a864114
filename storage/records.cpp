#include "storage/records.hpp"

#include "storage/codec.hpp"

#include <nlohmann/json.hpp>

namespace presence::storage {

namespace {

using nlohmann::json;

// Reads field `name` of `j` into `out`, or records why it cannot.
class reader {
public:
  explicit reader(const json& j) : j_(j) {}

  template <class T>
  void operator()(const char* name, T& out) {
    if (!why_.empty())
      return;
    auto i = j_.find(name);
    if (i == j_.end()) {
      why_ = std::string{"corrupt record: field '"} + name + "' is missing";
      return;
    }
    if (!fits<T>(*i)) {
      why_ = std::string{"corrupt record: field '"} + name + "' has the wrong type";
      return;
    }
    out = i->template get<T>();
  }

  const std::string& why() const { return why_; }

private:
  template <class T>
  static bool fits(const json& v) {
    if constexpr (std::is_same_v<T, bool>)
      return v.is_boolean();
    else if constexpr (std::is_same_v<T, std::string>)
      return v.is_string();
    else if constexpr (std::is_same_v<T, double>)
      return v.is_number();
    else if constexpr (std::is_unsigned_v<T>)
      return v.is_number_unsigned()
             && v.get<uint64_t>() <= std::numeric_limits<T>::max();
    else if constexpr (std::is_integral_v<T>)
      return v.is_number_integer();
    else
      return true; // containers: checked by their own readers
  }

  const json& j_;
  std::string why_;
};

json to_json(const session_record& r) {
  json rooms = json::array();
  for (auto& [id, visible] : r.rooms)
    rooms.push_back(json::array({id, visible}));
  return {{"sid", r.session_id}, {"uid", r.user_id},     {"dev", r.device},
          {"tok", json::binary(std::vector<uint8_t>(r.resume_hash.begin(),
                                                    r.resume_hash.end()))},
          {"ls", r.last_signal_at}, {"la", r.last_active_at}, {"dec", r.declared},
          {"ea", r.ever_active},    {"hb", r.heartbeat_ms},   {"rooms", rooms}};
}

json to_json(const user_record& r) {
  return {{"uid", r.user_id}, {"st", r.published}, {"seq", r.seq},
          {"since", r.since}, {"la", r.last_active_at}, {"lseen", r.last_seen_at}};
}

json to_json(const room_record& r) {
  return {{"rid", r.room_id}, {"media", r.media_attached}, {"ph", r.phase},
          {"mr", r.momentum_rate}, {"mat", r.momentum_at}};
}

json to_json(const timeline_record& r) {
  return {{"rid", r.room_id},        {"t", r.t},       {"c", r.counts},
          {"rd", r.readiness}, {"ph", r.phase}};
}

json to_json(const intent_record& r) {
  return {{"iid", r.intent_id},   {"from", r.from_user},  {"tu", r.to_user},
          {"tr", r.to_room},      {"kind", r.kind},       {"note", r.note},
          {"st", r.status},       {"ca", r.created_at},   {"ea", r.expires_at},
          {"da", r.delivered_at}, {"ra", r.ready_at},     {"ru", r.retain_until}};
}

std::optional<record> from_json(kind k, const json& j, std::string* why) {
  reader f{j};
  auto done = [&](record r) -> std::optional<record> {
    if (!f.why().empty()) {
      if (why != nullptr)
        *why = f.why();
      return std::nullopt;
    }
    return r;
  };
  auto fail = [&](std::string msg) -> std::optional<record> {
    if (why != nullptr)
      *why = std::move(msg);
    return std::nullopt;
  };
  switch (k) {
    case kind::sessions: {
      session_record r;
      f("sid", r.session_id);
      f("uid", r.user_id);
      f("dev", r.device);
      f("ls", r.last_signal_at);
      f("la", r.last_active_at);
      f("dec", r.declared);
      f("ea", r.ever_active);
      f("hb", r.heartbeat_ms);
      auto tok = j.find("tok");
      if (tok == j.end() || !tok->is_binary() || tok->get_binary().size() != 32)
        return fail("corrupt record: field 'tok' is not a 32-byte hash");
      r.resume_hash.assign(tok->get_binary().begin(), tok->get_binary().end());
      auto rooms = j.find("rooms");
      if (rooms == j.end() || !rooms->is_array())
        return fail("corrupt record: field 'rooms' is not a list");
      for (auto& x : *rooms) {
        if (!x.is_array() || x.size() != 2 || !x[0].is_string() || !x[1].is_boolean())
          return fail("corrupt record: an entry of 'rooms' is not [id, visible]");
        r.rooms.emplace_back(x[0].get<std::string>(), x[1].get<bool>());
      }
      if (r.declared > 2)
        return fail("corrupt record: field 'dec' is not a signal");
      return done(std::move(r));
    }
    case kind::users: {
      user_record r;
      f("uid", r.user_id);
      f("st", r.published);
      f("seq", r.seq);
      f("since", r.since);
      f("la", r.last_active_at);
      f("lseen", r.last_seen_at);
      if (f.why().empty() && r.published > 4)
        return fail("corrupt record: field 'st' is not a state");
      return done(std::move(r));
    }
    case kind::rooms: {
      room_record r;
      f("rid", r.room_id);
      f("media", r.media_attached);
      f("ph", r.phase);
      f("mr", r.momentum_rate);
      f("mat", r.momentum_at);
      if (f.why().empty() && r.phase > 3)
        return fail("corrupt record: field 'ph' is not a phase");
      return done(std::move(r));
    }
    case kind::timeline: {
      timeline_record r;
      f("rid", r.room_id);
      f("t", r.t);
      f("rd", r.readiness);
      f("ph", r.phase);
      auto c = j.find("c");
      if (c == j.end() || !c->is_array() || c->size() != r.counts.size())
        return fail("corrupt record: field 'c' is not five counts");
      for (size_t i = 0; i < r.counts.size(); ++i) {
        if (!(*c)[i].is_number_integer())
          return fail("corrupt record: field 'c' is not five counts");
        r.counts[i] = (*c)[i].get<int64_t>();
      }
      return done(std::move(r));
    }
    case kind::intents: {
      intent_record r;
      f("iid", r.intent_id);
      f("from", r.from_user);
      f("tu", r.to_user);
      f("tr", r.to_room);
      f("kind", r.kind);
      f("note", r.note);
      f("st", r.status);
      f("ca", r.created_at);
      f("ea", r.expires_at);
      f("da", r.delivered_at);
      f("ra", r.ready_at);
      f("ru", r.retain_until);
      if (f.why().empty() && r.status > 5)
        return fail("corrupt record: field 'st' is not an intent status");
      return done(std::move(r));
    }
  }
  return fail("unknown kind");
}

} // namespace

kind kind_of(const record& r) {
  struct visitor {
    kind operator()(const session_record&) const { return kind::sessions; }
    kind operator()(const user_record&) const { return kind::users; }
    kind operator()(const room_record&) const { return kind::rooms; }
    kind operator()(const timeline_record&) const { return kind::timeline; }
    kind operator()(const intent_record&) const { return kind::intents; }
  };
  return std::visit(visitor{}, r);
}

std::string key_of(const record& r) {
  struct visitor {
    std::string operator()(const session_record& x) const { return x.session_id; }
    std::string operator()(const user_record& x) const { return x.user_id; }
    std::string operator()(const room_record& x) const { return x.room_id; }
    std::string operator()(const timeline_record& x) const {
      return timeline_key(x.room_id, x.t);
    }
    std::string operator()(const intent_record& x) const { return x.intent_id; }
  };
  return std::visit(visitor{}, r);
}

std::string timeline_key(std::string_view room_id, int64_t t) {
  std::string out{room_id};
  out.push_back('\0');
  auto u = static_cast<uint64_t>(t);
  for (int shift = 56; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((u >> shift) & 0xff));
  return out;
}

std::string encode_record(const record& r) {
  return std::visit([](const auto& x) { return encode(to_json(x)); }, r);
}

std::optional<record> decode_record(kind k, std::string_view bytes, std::string* why) {
  auto j = decode(bytes, why);
  if (!j)
    return std::nullopt;
  return from_json(k, *j, why);
}

} // namespace presence::storage
