#include "storage/records.hpp"

#include "storage/codec.hpp"
#include "storage/msgpack.hpp"

namespace presence::storage {

namespace {

using msgpack::reader;
using msgpack::writer;

// Decodes one map-shaped record: `field(key, r)` reads the value of a known key
// (returning false with `why` set when its type is wrong) or skips it; every
// name in `required` must appear.
class record_reader {
public:
  record_reader(std::string_view body, std::string* why) : r_(body), why_(why) {}

  template <class F>
  bool fields(std::initializer_list<const char*> required, F&& field) {
    return fields(required, {}, std::forward<F>(field));
  }

  // As above, with `optional` names that may be missing (fields added later).
  template <class F>
  bool fields(std::initializer_list<const char*> required,
              std::initializer_list<const char*> optional, F&& field) {
    uint32_t n = 0;
    if (!r_.map(n))
      return fail(r_.truncated() ? "corrupt record: truncated" : "corrupt record: not an object");
    uint64_t seen = 0;
    for (uint32_t i = 0; i < n; ++i) {
      std::string_view key;
      if (!r_.str(key))
        return fail("corrupt record: a key is not a string");
      int index = 0;
      bool known = false;
      for (auto* name : required) {
        if (key == name) {
          known = true;
          break;
        }
        ++index;
      }
      bool is_optional = false;
      for (auto* name : optional)
        if (!known && key == name)
          is_optional = known = true;
      if (!known) {
        if (!r_.skip())
          return fail("corrupt record: an unknown field does not decode");
        continue;
      }
      if (!field(key, r_)) {
        if (why_ != nullptr && why_->empty())
          *why_ = r_.truncated() ? "corrupt record: truncated"
                                 : "corrupt record: field '" + std::string{key}
                                     + "' has the wrong type";
        return false;
      }
      if (!is_optional)
        seen |= uint64_t{1} << index;
    }
    if (!r_.at_end())
      return fail("corrupt record: bytes after its end");
    int index = 0;
    for (auto* name : required) {
      if ((seen & (uint64_t{1} << index)) == 0)
        return fail(std::string{"corrupt record: field '"} + name + "' is missing");
      ++index;
    }
    return true;
  }

  bool fail(std::string msg) {
    if (why_ != nullptr)
      *why_ = std::move(msg);
    return false;
  }

private:
  reader r_;
  std::string* why_;
};

bool read_string(reader& r, std::string& out) {
  std::string_view s;
  if (!r.str(s))
    return false;
  out.assign(s);
  return true;
}

template <class T>
bool read_small(reader& r, T& out, uint64_t max) {
  uint64_t v = 0;
  if (!r.uinteger(v) || v > max)
    return false;
  out = static_cast<T>(v);
  return true;
}

void encode_body(writer& w, const session_record& r) {
  w.map(10);
  w.field("sid", [&](writer& x) { x.str(r.session_id); });
  w.field("uid", [&](writer& x) { x.str(r.user_id); });
  w.field("dev", [&](writer& x) { x.str(r.device); });
  w.field("tok", [&](writer& x) { x.bin(r.resume_hash); });
  w.field("ls", [&](writer& x) { x.integer(r.last_signal_at); });
  w.field("la", [&](writer& x) { x.integer(r.last_active_at); });
  w.field("dec", [&](writer& x) { x.uinteger(r.declared); });
  w.field("ea", [&](writer& x) { x.boolean(r.ever_active); });
  w.field("hb", [&](writer& x) { x.integer(r.heartbeat_ms); });
  w.field("rooms", [&](writer& x) {
    x.array(static_cast<uint32_t>(r.rooms.size()));
    for (auto& [id, visible] : r.rooms) {
      x.array(2);
      x.str(id);
      x.boolean(visible);
    }
  });
}

// A list of analytics samples: [[t, ms, kind], ...].
void encode_samples(writer& w, const std::vector<analytics_sample>& xs) {
  w.array(static_cast<uint32_t>(xs.size()));
  for (auto& x : xs) {
    w.array(3);
    w.integer(x.t);
    w.integer(x.ms);
    w.uinteger(x.kind);
  }
}

// A user's intent outcomes: [revision, outgoing, incoming], each direction
// [accepted, declined, expired, cancelled, delivered, [[t, ms, kind], ...]].
void encode_intent_outcomes(writer& w, const user_intent_analytics& a) {
  w.array(3);
  w.uinteger(a.revision);
  for (auto* d : {&a.outgoing, &a.incoming}) {
    w.array(6);
    for (auto x : d->final)
      w.integer(x);
    w.integer(d->final_delivered);
    encode_samples(w, d->times);
  }
}

void encode_body(writer& w, const user_record& r) {
  auto with_intents = r.intents.revision != 0;
  w.map(with_intents ? 7 : 6);
  if (with_intents)
    w.field("io", [&](writer& x) { encode_intent_outcomes(x, r.intents); });
  w.field("uid", [&](writer& x) { x.str(r.user_id); });
  w.field("st", [&](writer& x) { x.uinteger(r.published); });
  w.field("seq", [&](writer& x) { x.uinteger(r.seq); });
  w.field("since", [&](writer& x) { x.integer(r.since); });
  w.field("la", [&](writer& x) { x.integer(r.last_active_at); });
  w.field("lseen", [&](writer& x) { x.integer(r.last_seen_at); });
}

// A room's analytics as nested arrays (no field names: a day of buckets is
// 1440 of them): [seg_at, seg_readiness, seg_phase, media_off_at, revision,
// buckets, stays, decays, episodes, intent_times]. Buckets have 17 values (12
// before intent outcomes), the list 10 (9 before); both widths are read.
void encode_analytics(writer& w, const room_analytics& a) {
  w.array(10);
  w.integer(a.seg_at);
  w.real(a.seg_readiness);
  w.uinteger(a.seg_phase);
  w.integer(a.media_off_at);
  w.uinteger(a.revision);
  w.array(static_cast<uint32_t>(a.buckets.size()));
  for (auto& b : a.buckets) {
    w.array(17);
    w.integer(b.t);
    w.real(b.readiness_min);
    w.real(b.readiness_max);
    w.real(b.readiness_ms);
    for (size_t i = 1; i < b.phase_ms.size(); ++i)
      w.integer(b.phase_ms[i]);
    w.integer(b.joins);
    w.integer(b.leaves);
    w.integer(b.left_before_ready);
    w.integer(b.left_quickly);
    w.integer(b.left_before_ready_quickly);
    for (auto x : b.intents_final)
      w.integer(x);
    w.integer(b.intents_final_delivered);
  }
  for (auto* xs : {&a.stays, &a.decays})
    encode_samples(w, *xs);
  w.array(static_cast<uint32_t>(a.episodes.size()));
  for (auto& e : a.episodes) {
    w.array(8);
    w.integer(e.started_at);
    w.integer(e.ready_at);
    w.integer(e.cooling_at);
    w.integer(e.ended_at);
    w.integer(e.present_at_ready);
    w.real(e.readiness_at_ready);
    w.integer(e.present_at_cooling);
    w.real(e.readiness_at_cooling);
  }
  encode_samples(w, a.intent_times);
}

// A list of at most max_stored_analytics_items entries, each an array of
// `width` values (or `old_width`, an older writer's) read by `item(x, w)`.
template <class T, class F>
bool read_list(reader& r, std::vector<T>& out, uint32_t width, F item,
               uint32_t old_width = 0) {
  uint32_t n = 0;
  if (!r.array(n) || n > max_stored_analytics_items)
    return false;
  out.resize(n);
  for (auto& x : out) {
    uint32_t w = 0;
    if (!r.array(w) || (w != width && (old_width == 0 || w != old_width)) || !item(x, w))
      return false;
  }
  return true;
}

bool decode_analytics(reader& r, room_analytics& a, std::string* why) {
  uint32_t n = 0;
  bool ok = r.array(n) && (n == 9 || n == 10) && r.integer(a.seg_at)
            && r.real(a.seg_readiness)
            && read_small(r, a.seg_phase, 3) && r.integer(a.media_off_at)
            && r.uinteger(a.revision)
            && read_list(
                 r, a.buckets, 17,
                 [&](analytics_bucket& b, uint32_t width) {
                   bool good = r.integer(b.t) && r.real(b.readiness_min)
                               && r.real(b.readiness_max) && r.real(b.readiness_ms);
                   for (size_t i = 1; good && i < b.phase_ms.size(); ++i)
                     good = r.integer(b.phase_ms[i]);
                   good = good && r.integer(b.joins) && r.integer(b.leaves)
                          && r.integer(b.left_before_ready) && r.integer(b.left_quickly)
                          && r.integer(b.left_before_ready_quickly);
                   if (width == 12) // written before intent outcomes
                     return good;
                   for (size_t i = 0; good && i < b.intents_final.size(); ++i)
                     good = r.integer(b.intents_final[i]);
                   return good && r.integer(b.intents_final_delivered);
                 },
                 12);
  for (auto* xs : {&a.stays, &a.decays})
    ok = ok && read_list(r, *xs, 3, [&](analytics_sample& x, uint32_t) {
           return r.integer(x.t) && r.integer(x.ms) && read_small(r, x.kind, 4);
         });
  ok = ok && read_list(r, a.episodes, 8, [&](analytics_episode& e, uint32_t) {
         return r.integer(e.started_at) && r.integer(e.ready_at) && r.integer(e.cooling_at)
                && r.integer(e.ended_at) && r.integer(e.present_at_ready)
                && r.real(e.readiness_at_ready) && r.integer(e.present_at_cooling)
                && r.real(e.readiness_at_cooling);
       });
  if (ok && n == 10)
    ok = read_list(r, a.intent_times, 3, [&](analytics_sample& x, uint32_t) {
      return r.integer(x.t) && r.integer(x.ms) && read_small(r, x.kind, 6) && x.kind >= 5;
    });
  if (!ok && why != nullptr && why->empty())
    *why = "corrupt record: field 'an' is not a room's analytics";
  return ok;
}

bool decode_intent_outcomes(reader& r, user_intent_analytics& a, std::string* why) {
  uint32_t n = 0;
  bool ok = r.array(n) && n == 3 && r.uinteger(a.revision);
  for (auto* d : {&a.outgoing, &a.incoming}) {
    ok = ok && r.array(n) && n == 6;
    for (size_t i = 0; ok && i < d->final.size(); ++i)
      ok = r.integer(d->final[i]);
    ok = ok && r.integer(d->final_delivered)
         && read_list(r, d->times, 3, [&](analytics_sample& x, uint32_t) {
              return r.integer(x.t) && r.integer(x.ms) && read_small(r, x.kind, 6)
                     && x.kind >= 5;
            });
  }
  if (!ok && why != nullptr && why->empty())
    *why = "corrupt record: field 'io' is not a user's intent outcomes";
  return ok;
}

bool decode_start_when(reader& r, start_when_state& s, std::string* why) {
  uint32_t n = 0;
  bool ok = r.array(n) && n == 5 && r.real(s.rule.readiness_at_least)
            && r.integer(s.rule.active_at_least) && r.integer(s.rule.for_ms)
            && r.integer(s.met_since) && r.boolean(s.holding)
            && s.rule.readiness_at_least >= 0 && s.rule.readiness_at_least <= 1
            && s.rule.active_at_least >= 0 && s.rule.for_ms >= 0;
  if (!ok && why != nullptr && why->empty())
    *why = "corrupt record: field 'sw' is not a start_when rule";
  return ok;
}

void encode_body(writer& w, const room_record& r) {
  auto& sw = r.start_when;
  auto with_rule = sw.rule.set();
  w.map(with_rule ? 7 : 6);
  if (with_rule)
    w.field("sw", [&](writer& x) {
      // [readiness_at_least, active_at_least, for_ms, met_since, holding]
      x.array(5);
      x.real(sw.rule.readiness_at_least);
      x.integer(sw.rule.active_at_least);
      x.integer(sw.rule.for_ms);
      x.integer(sw.met_since);
      x.boolean(sw.holding);
    });
  w.field("rid", [&](writer& x) { x.str(r.room_id); });
  w.field("media", [&](writer& x) { x.boolean(r.media_attached); });
  w.field("ph", [&](writer& x) { x.uinteger(r.phase); });
  w.field("mr", [&](writer& x) { x.real(r.momentum_rate); });
  w.field("mat", [&](writer& x) { x.integer(r.momentum_at); });
  w.field("an", [&](writer& x) { encode_analytics(x, r.analytics); });
}

void encode_body(writer& w, const timeline_record& r) {
  w.map(5);
  w.field("rid", [&](writer& x) { x.str(r.room_id); });
  w.field("t", [&](writer& x) { x.integer(r.t); });
  w.field("c", [&](writer& x) {
    x.array(static_cast<uint32_t>(r.counts.size()));
    for (auto c : r.counts)
      x.integer(c);
  });
  w.field("rd", [&](writer& x) { x.real(r.readiness); });
  w.field("ph", [&](writer& x) { x.uinteger(r.phase); });
}

void encode_body(writer& w, const intent_record& r) {
  w.map(12);
  w.field("iid", [&](writer& x) { x.str(r.intent_id); });
  w.field("from", [&](writer& x) { x.str(r.from_user); });
  w.field("tu", [&](writer& x) { x.str(r.to_user); });
  w.field("tr", [&](writer& x) { x.str(r.to_room); });
  w.field("kind", [&](writer& x) { x.str(r.kind); });
  w.field("note", [&](writer& x) { x.str(r.note); });
  w.field("st", [&](writer& x) { x.uinteger(r.status); });
  w.field("ca", [&](writer& x) { x.integer(r.created_at); });
  w.field("ea", [&](writer& x) { x.integer(r.expires_at); });
  w.field("da", [&](writer& x) { x.integer(r.delivered_at); });
  w.field("ra", [&](writer& x) { x.integer(r.ready_at); });
  w.field("ru", [&](writer& x) { x.integer(r.retain_until); });
}

std::optional<record> decode_body(kind k, std::string_view body, std::string* why) {
  record_reader rr{body, why};
  auto is = [](std::string_view key, const char* name) { return key == name; };
  switch (k) {
    case kind::sessions: {
      session_record r;
      std::string problem;
      bool ok = rr.fields(
        {"sid", "uid", "dev", "tok", "ls", "la", "dec", "ea", "hb", "rooms"},
        [&](std::string_view key, reader& in) {
          if (is(key, "sid"))
            return read_string(in, r.session_id);
          if (is(key, "uid"))
            return read_string(in, r.user_id);
          if (is(key, "dev"))
            return read_string(in, r.device);
          if (is(key, "ls"))
            return in.integer(r.last_signal_at);
          if (is(key, "la"))
            return in.integer(r.last_active_at);
          if (is(key, "ea"))
            return in.boolean(r.ever_active);
          if (is(key, "hb"))
            return in.integer(r.heartbeat_ms);
          if (is(key, "dec")) {
            if (!read_small(in, r.declared, 255))
              return false;
            if (r.declared > 2 && why != nullptr)
              *why = "corrupt record: field 'dec' is not a signal";
            return r.declared <= 2;
          }
          if (is(key, "tok")) {
            std::string_view b;
            if (!in.bin(b) || b.size() != 32) {
              if (why != nullptr)
                *why = "corrupt record: field 'tok' is not a 32-byte hash";
              return false;
            }
            r.resume_hash.assign(b);
            return true;
          }
          // rooms
          uint32_t n = 0;
          if (!in.array(n)) {
            if (why != nullptr)
              *why = "corrupt record: field 'rooms' is not a list";
            return false;
          }
          r.rooms.reserve(n);
          for (uint32_t i = 0; i < n; ++i) {
            uint32_t two = 0;
            std::string_view id;
            bool visible = false;
            if (!in.array(two) || two != 2 || !in.str(id) || !in.boolean(visible)) {
              if (why != nullptr)
                *why = "corrupt record: an entry of 'rooms' is not [id, visible]";
              return false;
            }
            r.rooms.emplace_back(std::string{id}, visible);
          }
          return true;
        });
      if (!ok)
        return std::nullopt;
      return record{std::move(r)};
    }
    case kind::users: {
      user_record r;
      bool ok = rr.fields({"uid", "st", "seq", "since", "la", "lseen"}, {"io"},
                          [&](std::string_view key, reader& in) {
                            if (is(key, "io"))
                              return decode_intent_outcomes(in, r.intents, why);
                            if (is(key, "uid"))
                              return read_string(in, r.user_id);
                            if (is(key, "st")) {
                              if (!read_small(in, r.published, 255))
                                return false;
                              if (r.published > 4 && why != nullptr)
                                *why = "corrupt record: field 'st' is not a state";
                              return r.published <= 4;
                            }
                            if (is(key, "seq"))
                              return in.uinteger(r.seq);
                            if (is(key, "since"))
                              return in.integer(r.since);
                            if (is(key, "la"))
                              return in.integer(r.last_active_at);
                            return in.integer(r.last_seen_at);
                          });
      if (!ok)
        return std::nullopt;
      return record{std::move(r)};
    }
    case kind::rooms: {
      room_record r;
      bool ok = rr.fields({"rid", "media", "ph", "mr", "mat"}, {"an", "sw"},
                          [&](std::string_view key, reader& in) {
                            if (is(key, "sw"))
                              return decode_start_when(in, r.start_when, why);
                            if (is(key, "an"))
                              return decode_analytics(in, r.analytics, why);
                            if (is(key, "rid"))
                              return read_string(in, r.room_id);
                            if (is(key, "media"))
                              return in.boolean(r.media_attached);
                            if (is(key, "ph")) {
                              if (!read_small(in, r.phase, 255))
                                return false;
                              if (r.phase > 3 && why != nullptr)
                                *why = "corrupt record: field 'ph' is not a phase";
                              return r.phase <= 3;
                            }
                            if (is(key, "mr"))
                              return in.real(r.momentum_rate);
                            return in.integer(r.momentum_at);
                          });
      if (!ok)
        return std::nullopt;
      return record{std::move(r)};
    }
    case kind::timeline: {
      timeline_record r;
      bool ok = rr.fields({"rid", "t", "c", "rd", "ph"},
                          [&](std::string_view key, reader& in) {
                            if (is(key, "rid"))
                              return read_string(in, r.room_id);
                            if (is(key, "t"))
                              return in.integer(r.t);
                            if (is(key, "rd"))
                              return in.real(r.readiness);
                            if (is(key, "ph"))
                              return read_small(in, r.phase, 3);
                            uint32_t n = 0;
                            bool good = in.array(n) && n == r.counts.size();
                            for (uint32_t i = 0; good && i < n; ++i)
                              good = in.integer(r.counts[i]);
                            if (!good && why != nullptr)
                              *why = "corrupt record: field 'c' is not five counts";
                            return good;
                          });
      if (!ok)
        return std::nullopt;
      return record{std::move(r)};
    }
    case kind::intents: {
      intent_record r;
      bool ok = rr.fields(
        {"iid", "from", "tu", "tr", "kind", "note", "st", "ca", "ea", "da", "ra", "ru"},
        [&](std::string_view key, reader& in) {
          if (is(key, "iid"))
            return read_string(in, r.intent_id);
          if (is(key, "from"))
            return read_string(in, r.from_user);
          if (is(key, "tu"))
            return read_string(in, r.to_user);
          if (is(key, "tr"))
            return read_string(in, r.to_room);
          if (is(key, "kind"))
            return read_string(in, r.kind);
          if (is(key, "note"))
            return read_string(in, r.note);
          if (is(key, "st")) {
            if (!read_small(in, r.status, 255))
              return false;
            if (r.status > 5 && why != nullptr)
              *why = "corrupt record: field 'st' is not an intent status";
            return r.status <= 5;
          }
          if (is(key, "ca"))
            return in.integer(r.created_at);
          if (is(key, "ea"))
            return in.integer(r.expires_at);
          if (is(key, "da"))
            return in.integer(r.delivered_at);
          if (is(key, "ra"))
            return in.integer(r.ready_at);
          return in.integer(r.retain_until);
        });
      if (!ok)
        return std::nullopt;
      return record{std::move(r)};
    }
  }
  rr.fail("unknown kind");
  return std::nullopt;
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
  std::string out;
  out.reserve(128);
  out.push_back(static_cast<char>(record_version));
  writer w{out};
  std::visit([&](const auto& x) { encode_body(w, x); }, r);
  return out;
}

std::optional<record> decode_record(kind k, std::string_view bytes, std::string* why) {
  auto body = versioned_body(bytes, why);
  if (!body)
    return std::nullopt;
  std::string scratch;
  return decode_body(k, *body, why != nullptr ? why : &scratch);
}

} // namespace presence::storage
