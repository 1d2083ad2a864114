#include "gateway/json_codec.hpp"

#include "actors/errors.hpp"
#include "actors/ids.hpp"
#include "actors/start_when.hpp"

namespace presence::gateway {

using namespace presence::actors;

namespace {

json optional_time(int64_t t) {
  return t == 0 ? json(nullptr) : json(t);
}

std::string str(std::string_view s) {
  return std::string{s};
}

} // namespace

json error_body(const api_error& e) {
  return {{"error", {{"code", e.code}, {"message", e.message}}}};
}

api_error from_actor_error(const caf::error& e) {
  // The actor's own explanation when it gave one, else the error's name.
  auto msg = render(e);
  if (e.category() == caf::atom("presence") && e.context().match_elements<std::string>())
    msg = e.context().get_as<std::string>(0);
  switch (code_of(e)) {
    case errc::session_not_found:
      return {404, "session_not_found", "no such session: create a new one"};
    case errc::intent_not_found:
      return {404, "intent_not_found", "no such intent"};
    case errc::forbidden:
      return {403, "forbidden", msg};
    case errc::conflict:
      return {409, "conflict", msg};
    case errc::invalid_argument:
      return {400, "invalid_argument", msg};
    case errc::taken_over:
      return {409, "session_taken_over", "this session was resumed on another connection"};
    default:
      return {503, "unavailable", "the entity's owner did not answer: " + msg};
  }
}

json to_json(const cluster::cluster_status& s) {
  json nodes = json::array();
  for (auto& x : s.nodes)
    nodes.push_back({{"id", x.id},
                     {"address", x.address},
                     {"cluster_address", x.cluster_address},
                     {"status", x.status},
                     {"share", x.share},
                     {"actors", x.actors}});
  return json{{"epoch", s.epoch}, {"leader", s.leader}, {"nodes", nodes}};
}

json to_json(const state_counts& c) {
  json out = json::object();
  for (auto s : {state::active, state::idle, state::away, state::stale,
                 state::offline})
    out[str(to_string(s))] = c[static_cast<size_t>(s)];
  return out;
}

json to_json(const session_view& v) {
  json rooms = json::array();
  for (auto& r : v.rooms)
    rooms.push_back(r);
  return {{"session_id", v.session_id},
          {"user_id", v.user_id},
          {"device", v.device},
          {"state", str(to_string(v.current))},
          {"last_signal_at", v.last_signal_at},
          {"last_active_at", optional_time(v.last_active_at)},
          {"heartbeat_ms", v.heartbeat_ms},
          {"confidence", v.confidence},
          {"rooms", rooms}};
}

json to_json(const user_view& v) {
  json sessions = json::array();
  for (auto& s : v.sessions)
    sessions.push_back({{"session_id", s.session_id},
                        {"device", s.device},
                        {"state", str(to_string(s.current))},
                        {"last_signal_at", s.last_signal_at},
                        {"last_active_at", optional_time(s.last_active_at)}});
  return {{"user_id", v.user_id},
          {"state", str(to_string(v.current))},
          {"since", optional_time(v.since)},
          {"seq", v.seq},
          {"last_active_at", optional_time(v.last_active_at)},
          {"last_active_ago_ms", v.last_active_at == 0
                                   ? json(nullptr)
                                   : json(std::max<int64_t>(
                                       0, v.server_time - v.last_active_at))},
          {"last_seen_at", optional_time(v.last_seen_at)},
          {"confidence", v.confidence},
          {"sessions", sessions}};
}

json to_json(const room_view& v) {
  json out = {{"room_id", v.room_id},
              {"phase", str(to_string(v.phase))},
              {"readiness", v.readiness},
              {"counts", to_json(v.counts)},
              {"observers", v.observers},
              {"member_count", v.member_count},
              {"momentum", v.momentum},
              {"media_attached", v.media_attached},
              {"pending_intents", v.pending_intents}};
  json members = json::array();
  for (auto& m : v.members)
    members.push_back({{"user_id", m.user_id},
                       {"state", str(to_string(m.current))},
                       {"visible", m.visible}});
  out["members"] = members;
  out["next_after"] = v.next_after.empty() ? json(nullptr) : json(v.next_after);
  out["start_when"] = to_json(v.start_when);
  out["threshold_holding"] = v.threshold_holding;
  return out;
}

json to_json(const storage::start_when_rule& r) {
  if (!r.set())
    return nullptr;
  json out = json::object();
  if (r.readiness_at_least > 0)
    out["readiness_at_least"] = r.readiness_at_least;
  if (r.active_at_least > 0)
    out["active_visible_members_at_least"] = r.active_at_least;
  out["for_ms"] = r.for_ms;
  return out;
}

json to_json(const intent_view& v) {
  json out = {{"intent_id", v.intent_id},
              {"from_user", v.from_user},
              {"kind", v.kind},
              {"status", str(to_string(v.status))},
              {"created_at", v.created_at},
              {"expires_at", v.expires_at}};
  if (!v.to_user.empty())
    out["to_user"] = v.to_user;
  else
    out["to_room"] = v.to_room;
  if (!v.note.empty())
    out["note"] = v.note;
  if (v.delivered_at != 0)
    out["delivered_at"] = v.delivered_at;
  if (v.ready_at != 0)
    out["ready_at"] = v.ready_at;
  return out;
}

json to_json(const timeline_sample& v) {
  return {{"t", v.t},
          {"counts", to_json(v.counts)},
          {"readiness", v.readiness},
          {"phase", str(to_string(v.phase))}};
}

namespace {

json to_json(const analytics::percentiles& p) {
  if (p.n == 0)
    return {{"n", 0}, {"p50", nullptr}, {"p90", nullptr}};
  return {{"n", p.n}, {"p50", p.p50}, {"p90", p.p90}};
}

// Values per phase, keyed by phase name.
template <class T>
json per_phase(const std::array<T, 4>& xs) {
  json out = json::object();
  for (size_t i = 0; i < xs.size(); ++i)
    out[str(to_string(static_cast<room_phase>(i)))] = xs[i];
  return out;
}

json per_outcome(const std::array<int64_t, 4>& xs) {
  return {{"accepted", xs[0]}, {"declined", xs[1]}, {"expired", xs[2]}, {"cancelled", xs[3]}};
}

json to_json(const analytics::intent_report& r) {
  int64_t finals = 0;
  for (auto x : r.final)
    finals += x;
  json out{{"final", per_outcome(r.final)},
           {"delivered_share", nullptr},
           {"to_delivered_ms", to_json(r.to_delivered)},
           {"to_answer_ms", to_json(r.to_answer)}};
  if (finals > 0)
    out["delivered_share"] =
      static_cast<double>(r.final_delivered) / static_cast<double>(finals);
  return out;
}

json level(int64_t present, double readiness) {
  return {{"present", present}, {"readiness", readiness}};
}

} // namespace

json to_json(const analytics::report& r) {
  json buckets = json::array();
  for (auto& b : r.buckets) {
    std::array<double, 4> share{};
    for (size_t i = 0; i < share.size() && b.span_ms > 0; ++i)
      share[i] = static_cast<double>(b.phase_ms[i]) / static_cast<double>(b.span_ms);
    json readiness = nullptr;
    if (b.present_ms > 0)
      readiness = {{"min", b.readiness_min}, {"mean", b.readiness_mean}, {"max", b.readiness_max}};
    buckets.push_back({{"t", b.t},
                       {"span_ms", b.span_ms},
                       {"present_ms", b.present_ms},
                       {"readiness", readiness},
                       {"phase_ms", per_phase(b.phase_ms)},
                       {"phase_share", per_phase(share)},
                       {"joins", b.joins},
                       {"leaves", b.leaves},
                       {"drop_off", {{"before_ready", b.left_before_ready},
                                     {"quickly", b.left_quickly},
                                     {"before_ready_quickly", b.left_before_ready_quickly}}},
                       {"attention_decay", {{"to_idle", to_json(b.to_idle)},
                                            {"to_away", to_json(b.to_away)}}}});
  }
  json episodes = json::array();
  for (auto& e : r.episodes) {
    json x{{"started_at", optional_time(e.started_at)},
           {"ready_at", optional_time(e.ready_at)},
           {"time_to_ready_ms", nullptr},
           {"cooling_at", optional_time(e.cooling_at)},
           {"ended_at", optional_time(e.ended_at)},
           {"at_ready", nullptr},
           {"at_cooling", nullptr}};
    if (e.ready_at != 0 && e.started_at != 0)
      x["time_to_ready_ms"] = e.ready_at - e.started_at;
    if (e.ready_at != 0)
      x["at_ready"] = level(e.present_at_ready, e.readiness_at_ready);
    if (e.cooling_at != 0)
      x["at_cooling"] = level(e.present_at_cooling, e.readiness_at_cooling);
    episodes.push_back(std::move(x));
  }
  return {{"room_id", r.room_id},
          {"now", r.now},
          {"since", r.since},
          {"bucket_ms", r.bucket_ms},
          {"base_bucket_ms", r.base_bucket_ms},
          {"kept_from", optional_time(r.kept_from)},
          {"revision", r.revision},
          {"phase", str(to_string(r.phase))},
          {"readiness", r.readiness},
          {"buckets", std::move(buckets)},
          {"stay_ms", to_json(r.stay)},
          {"drop_off", {{"leaves", r.leaves},
                        {"before_ready", r.left_before_ready},
                        {"quickly", r.left_quickly},
                        {"before_ready_quickly", r.left_before_ready_quickly},
                        {"quickly_ms", r.drop_off_ms}}},
          {"attention_decay",
           {{"to_idle", to_json(r.to_idle)},
            {"to_away", to_json(r.to_away)},
            {"after_media", {{"window_ms", r.media_decay_window_ms},
                             {"to_idle", to_json(r.to_idle_after_media)},
                             {"to_away", to_json(r.to_away_after_media)}}}}},
          {"episodes", std::move(episodes)},
          {"intents", to_json(r.intents)},
          {"thresholds", {{"ready", r.ready_threshold},
                          {"hysteresis", r.ready_hysteresis},
                          {"cooling_below", r.ready_threshold - r.ready_hysteresis}}},
          {"start_when", to_json(r.start_when.rule)},
          {"threshold_holding", r.start_when.holding}};
}

json to_json(const analytics::user_intent_report& r) {
  return {{"user_id", r.user_id},
          {"now", r.now},
          {"revision", r.revision},
          {"outgoing", to_json(r.outgoing)},
          {"incoming", to_json(r.incoming)}};
}

json to_json(const presence_event& e) {
  return {{"op", "presence"},
          {"user_id", e.user_id},
          {"state", str(to_string(e.current))},
          {"prev", str(to_string(e.prev))},
          {"seq", e.seq},
          {"since", e.since},
          {"last_active_at", optional_time(e.last_active_at)}};
}

json to_json(const room_event& e) {
  json out = {{"op", "room"},
              {"room_id", e.room_id},
              {"event", e.event},
              {"counts", to_json(e.counts)},
              {"readiness", e.readiness},
              {"phase", str(to_string(e.phase))}};
  if (!e.user_id.empty()) {
    out["user_id"] = e.user_id;
    out["state"] = str(to_string(e.current));
  }
  if (e.event == "threshold") {
    out["holding"] = e.holding;
    out["at"] = e.at;
  }
  return out;
}

json to_json(const room_delta& d) {
  json changed = json::array();
  for (auto& m : d.changed)
    changed.push_back({{"user_id", m.user_id}, {"state", str(to_string(m.current))}});
  return {{"op", "room_delta"},
          {"room_id", d.room_id},
          {"counts", to_json(d.counts)},
          {"readiness", d.readiness},
          {"phase", str(to_string(d.phase))},
          {"changed", changed},
          {"truncated", d.truncated}};
}

json session_created(const opened_session& s) {
  return {{"session_id", s.session_id},
          {"user_id", s.user_id},
          {"resume_token", s.resume_token},
          {"heartbeat_ms", s.heartbeat_ms},
          {"server_time", s.server_time},
          {"state", str(to_string(s.current))}};
}

json signal_answer(const signal_reply& r) {
  return {{"state", str(to_string(r.current))},
          {"heartbeat_ms", r.heartbeat_ms},
          {"server_time", r.server_time}};
}

std::optional<json> parse_object(std::string_view body, bool empty_ok,
                                 api_error* err) {
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    if (empty_ok)
      return json::object();
    *err = {400, "invalid_json", "a JSON object body is required"};
    return std::nullopt;
  }
  auto j = json::parse(body, nullptr, false);
  if (j.is_discarded()) {
    *err = {400, "invalid_json", "the body is not valid JSON"};
    return std::nullopt;
  }
  if (!j.is_object()) {
    *err = {400, "invalid_json", "the body must be a JSON object"};
    return std::nullopt;
  }
  return j;
}

bool fields::fail(std::string code, std::string message) {
  *err_ = {400, std::move(code), std::move(message)};
  return false;
}

bool fields::string(const char* name, std::string& out, bool required) {
  auto i = obj_.find(name);
  if (i == obj_.end() || i->is_null())
    return required ? fail("invalid_field", std::string{"'"} + name + "' is required")
                    : true;
  if (!i->is_string())
    return fail("invalid_field", std::string{"'"} + name + "' must be a string");
  out = i->get<std::string>();
  return true;
}

bool fields::id(const char* name, std::string& out, bool required) {
  std::string tmp;
  if (!string(name, tmp, required))
    return false;
  if (tmp.empty() && !required && obj_.find(name) == obj_.end())
    return true;
  if (!valid_id(tmp))
    return fail("invalid_id", std::string{"'"} + name
                                + "' must be 1 to 128 bytes of [A-Za-z0-9_.:@-]");
  out = std::move(tmp);
  return true;
}

bool fields::boolean(const char* name, bool& out, bool required) {
  auto i = obj_.find(name);
  if (i == obj_.end() || i->is_null())
    return required ? fail("invalid_field", std::string{"'"} + name + "' is required")
                    : true;
  if (!i->is_boolean())
    return fail("invalid_field", std::string{"'"} + name + "' must be true or false");
  out = i->get<bool>();
  return true;
}

bool fields::integer(const char* name, int64_t& out, bool required, int64_t min,
                     int64_t max) {
  auto i = obj_.find(name);
  if (i == obj_.end() || i->is_null())
    return required ? fail("invalid_field", std::string{"'"} + name + "' is required")
                    : true;
  if (!i->is_number_integer())
    return fail("invalid_field", std::string{"'"} + name + "' must be an integer");
  auto v = i->get<int64_t>();
  if (v < min || v > max)
    return fail("invalid_field", std::string{"'"} + name + "' must be in "
                                   + std::to_string(min) + ".." + std::to_string(max));
  out = v;
  return true;
}

bool fields::number(const char* name, double& out, bool required, double min, double max) {
  auto i = obj_.find(name);
  if (i == obj_.end() || i->is_null())
    return required ? fail("invalid_field", std::string{"'"} + name + "' is required")
                    : true;
  if (!i->is_number())
    return fail("invalid_field", std::string{"'"} + name + "' must be a number");
  auto v = i->get<double>();
  if (!(v >= min && v <= max))
    return fail("invalid_field", std::string{"'"} + name + "' must be in "
                                   + json(min).dump() + ".." + json(max).dump());
  out = v;
  return true;
}

bool fields::signal(const char* name, signal_kind& out, bool required) {
  std::string tmp;
  bool present = obj_.find(name) != obj_.end() && !obj_.at(name).is_null();
  if (!string(name, tmp, required))
    return false;
  if (!present)
    return true;
  auto s = parse_signal(tmp);
  if (!s)
    return fail("invalid_signal", std::string{"'"} + name
                                    + "' must be active, idle or background");
  out = *s;
  return true;
}

bool fields::id_list(const char* name, std::vector<std::string>& out, size_t max) {
  auto i = obj_.find(name);
  if (i == obj_.end() || i->is_null())
    return true;
  if (!i->is_array())
    return fail("invalid_field", std::string{"'"} + name + "' must be an array of ids");
  if (i->size() > max)
    return fail("invalid_field", std::string{"'"} + name + "' holds at most "
                                   + std::to_string(max) + " ids");
  for (auto& x : *i) {
    if (!x.is_string() || !valid_id(x.get<std::string>()))
      return fail("invalid_id", std::string{"'"} + name
                                  + "' must hold ids of [A-Za-z0-9_.:@-], 1 to 128 bytes");
    out.push_back(x.get<std::string>());
  }
  return true;
}

bool fields::has(const char* name) const {
  auto i = obj_.find(name);
  return i != obj_.end() && !i->is_null();
}

bool fields::only(std::initializer_list<const char*> allowed) {
  for (auto& [key, value] : obj_.items()) {
    bool ok = false;
    for (auto a : allowed)
      ok = ok || key == a;
    if (!ok)
      return fail("unknown_field", "unknown field '" + key + "'");
  }
  return true;
}

bool read_intent_spec(fields& f, intent_spec& spec) {
  if (!f.id("to_user", spec.to_user, false) || !f.id("to_room", spec.to_room, false)
      || !f.string("kind", spec.kind, false) || !f.string("note", spec.note, false)
      || !f.integer("ttl_ms", spec.ttl_ms, false, 1, max_intent_ttl_ms))
    return false;
  if (spec.kind.size() > 64 || spec.note.size() > 1024)
    return f.fail("invalid_field", "'kind' is at most 64 bytes and 'note' 1024");
  return true;
}

bool read_start_when(fields& f, storage::start_when_rule& rule) {
  rule = {};
  if (!f.only({"readiness_at_least", "active_visible_members_at_least", "for_ms"})
      || !f.number("readiness_at_least", rule.readiness_at_least, false, 0, 1)
      || !f.integer("active_visible_members_at_least", rule.active_at_least, false, 1,
                    actors::start_when::max_members)
      || !f.integer("for_ms", rule.for_ms, false, 0, actors::start_when::max_for_ms))
    return false;
  if (f.has("readiness_at_least") && rule.readiness_at_least <= 0)
    return f.fail("invalid_field", "'readiness_at_least' must be above 0 (and at most 1)");
  if (!rule.set())
    return f.fail("invalid_field", "start_when needs 'readiness_at_least' or "
                                   "'active_visible_members_at_least' (to clear the rule: "
                                   "DELETE)");
  return true;
}

} // namespace presence::gateway
