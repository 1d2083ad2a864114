#include "gateway/api.hpp"

#include "actors/errors.hpp"
#include "gateway/demo_assets.hpp"
#include "actors/ids.hpp"

#include <caf/send.hpp>

#include <memory>
#include <mutex>
#include <vector>

namespace presence::gateway {

using namespace presence::actors;

namespace {

constexpr size_t max_query_users = 1000;
constexpr int64_t guest_token_ttl_s = 86400;

std::vector<std::string_view> segments(std::string_view path) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '/') {
      ++i;
      continue;
    }
    auto j = path.find('/', i);
    if (j == std::string_view::npos)
      j = path.size();
    out.push_back(path.substr(i, j - i));
    i = j;
  }
  return out;
}

bool may_read_users(const principal& p) {
  return p.role != role::guest;
}

// Converts an actor reply into a response.
template <class T, class F>
std::function<void(caf::expected<T>)> reply_with(respond_fn done, F render,
                                                 unsigned status = 200) {
  return [done, render, status](caf::expected<T> r) {
    if (!r)
      done(error_response(from_actor_error(r.error())));
    else
      done(json_response(status, render(*r)));
  };
}

// Answers 204 for an empty reply, or the actor's error.
std::function<void(caf::error)> no_content(respond_fn done) {
  return [done](caf::error e) {
    if (e)
      return done(error_response(from_actor_error(e)));
    http_response resp;
    resp.status = 204;
    done(std::move(resp));
  };
}

http_response not_found_session() {
  return error_response({404, "session_not_found", "no such session: create a new one"});
}

bool parse_int(const std::string& s, int64_t& out) {
  if (s.empty())
    return false;
  char* end = nullptr;
  errno = 0;
  auto v = std::strtoll(s.c_str(), &end, 10);
  if (errno != 0 || end != s.c_str() + s.size())
    return false;
  out = v;
  return true;
}

} // namespace

http_response json_response(unsigned status, const json& body) {
  http_response r;
  r.status = status;
  r.body = body.dump();
  return r;
}

http_response error_response(const api_error& e) {
  auto r = json_response(e.status, error_body(e));
  if (e.status == 503 || e.status == 429)
    r.retry_after_s = 1;
  return r;
}

api::api(actors::node& n, const authenticator& auth) : node_(n), auth_(auth) {
}

namespace {

// The view of a user that has no actor here: its dormant record, or a user
// that never had a session (offline, seq 0).
user_view resting_user(const std::string& id,
                       const std::optional<storage::user_record>& rec, int64_t now) {
  user_view v;
  v.user_id = id;
  v.server_time = now;
  if (rec) {
    v.current = static_cast<state>(rec->published);
    v.seq = rec->seq;
    v.since = rec->since;
    v.last_active_at = rec->last_active_at;
    v.last_seen_at = rec->last_seen_at;
  }
  return v;
}

} // namespace

void api::read_user(const std::string& id, std::function<void(caf::expected<user_view>)> f) {
  std::optional<storage::user_record> rest;
  auto h = node_.router().user_for_read(id, &rest);
  if (!h)
    return f(resting_user(id, rest, node_.now_ms()));
  ask<user_view>(node_.system(), h, std::move(f), caf::get_atom::value);
}

namespace {

// The demo page (built into the binary): `/demo` redirects to `/demo/`, whose
// relative imports then resolve under it.
http_response demo_file(const http_request& req) {
  if (req.method != "GET")
    return error_response({405, "method_not_allowed", "use GET"});
  if (req.path == "/demo") {
    http_response r;
    r.status = 301;
    r.location = "/demo/";
    r.body = "{}";
    return r;
  }
  auto path = req.path == "/demo/" ? std::string{"/demo/index.html"} : req.path;
  for (auto& a : demo_assets())
    if (a.path == path) {
      http_response r;
      r.content_type = std::string{a.content_type};
      r.body.assign(reinterpret_cast<const char*>(a.data), a.size);
      return r;
    }
  return error_response({404, "not_found", "no such file: " + req.path});
}

} // namespace

void api::handle(const http_request& req, respond_fn done) {
  auto now_s = node_.now_ms() / 1000;
  if (req.path == "/healthz" || req.path == "/readyz" || req.path == "/metrics") {
    if (req.method != "GET")
      return done(error_response({405, "method_not_allowed", "use GET"}));
    if (req.path == "/metrics") {
      http_response r;
      r.content_type = "text/plain; version=0.0.4";
      r.body = metrics_text ? metrics_text() : std::string{};
      return done(std::move(r));
    }
    if (req.path == "/readyz" && !node_.ready()) {
      auto r = json_response(503, {{"status", "recovering"}, {"node", node_.cfg().node.id}});
      r.retry_after_s = 1;
      return done(std::move(r));
    }
    return done(json_response(200, {{"status", req.path == "/healthz" ? "ok" : "ready"},
                                     {"node", node_.cfg().node.id}}));
  }
  if (req.path == "/demo" || req.path.rfind("/demo/", 0) == 0)
    return done(demo_file(req));
  if (!node_.ready())
    return done(error_response({503, "unavailable", "the node is recovering its state; retry"}));
  if (req.path == "/v1/guests") {
    if (req.method != "POST")
      return done(error_response({405, "method_not_allowed", "use POST"}));
    if (!auth_.allow_guests())
      return done(error_response({403, "forbidden", "guests are not allowed"}));
    auto sub = random_id("guest:", 8);
    return done(json_response(201, {{"token", auth_.issue(sub, role::guest, now_s,
                                                          guest_token_ttl_s)},
                                    {"user_id", sub},
                                    {"role", "guest"},
                                    {"expires_at", (now_s + guest_token_ttl_s) * 1000}}));
  }
  if (req.path.rfind("/v1/sessions/", 0) == 0)
    if (auto seg = segments(req.path); seg.size() == 4 && seg[3] == "leave")
      return leave_unloading(req, std::string{seg[2]}, done);
  std::string why;
  auto who = auth_.authenticate(req.authorization, req.x_user, req.x_role, {}, now_s,
                                &why);
  if (!who)
    return done(error_response({401, "unauthorized", why}));
  route(req, *who, done);
}

// `POST /v1/sessions/{sid}/leave` (1.1): sent by a page as it unloads
// (`sendBeacon`, `fetch` with `keepalive`), so without an Authorization header:
// the resume token is the credential.
void api::leave_unloading(const http_request& req, const std::string& sid,
                          respond_fn& done) {
  if (req.method != "POST")
    return done(error_response({405, "method_not_allowed", "use POST on " + req.path}));
  if (!valid_id(sid))
    return done(
      error_response({400, "invalid_id", "ids are 1 to 128 bytes of [A-Za-z0-9_.:@-]"}));
  api_error err;
  auto j = parse_object(req.body, false, &err);
  if (!j)
    return done(error_response(err));
  fields f{*j, &err};
  std::string token;
  int64_t after_ms = 0;
  if (!f.only({"resume_token", "after_ms"}) || !f.string("resume_token", token, true)
      || !f.integer("after_ms", after_ms, false, 0, max_leave_after_ms))
    return done(error_response(err));
  auto h = node_.router().session(sid);
  if (!h)
    return done(not_found_session());
  ask_unit(node_.system(), h,
           no_content(done), leave_atom::value, resume_atom::value, token, after_ms);
}

void api::route(const http_request& req, const principal& who, respond_fn& done) {
  auto& sys = node_.system();
  auto& r = node_.router();
  auto seg = segments(req.path);
  auto n = seg.size();
  auto is = [&](std::initializer_list<std::string_view> pattern) {
    if (pattern.size() != n)
      return false;
    size_t i = 0;
    for (auto p : pattern) {
      if (p != "*" && p != seg[i])
        return false;
      ++i;
    }
    return true;
  };
  auto method = [&](const char* m) { return req.method == m; };
  auto wrong_method = [&](const char* allowed) {
    done(error_response({405, "method_not_allowed",
                         std::string{"use "} + allowed + " on " + req.path}));
  };
  api_error err;
  auto bad = [&] { done(error_response(err)); };
  auto body = [&](bool empty_ok) { return parse_object(req.body, empty_ok, &err); };
  auto path_id = [&](size_t i, std::string& out) {
    out = std::string{seg[i]};
    if (!valid_id(out)) {
      err = {400, "invalid_id", "ids are 1 to 128 bytes of [A-Za-z0-9_.:@-]"};
      return false;
    }
    return true;
  };
  auto acting = who.role == role::admin ? admin_caller : who.user_id;

  if (n < 2 || seg[0] != "v1")
    return done(error_response({404, "not_found", "no such route: " + req.path}));

  // --- cluster ----------------------------------------------------------------
  if (seg[1] == "cluster") {
    if (who.role != role::admin)
      return done(error_response({403, "forbidden", "the cluster API needs the admin role"}));
    if (is({"v1", "cluster"})) {
      if (!method("GET"))
        return wrong_method("GET");
      if (!node_.cluster())
        return done(error_response({503, "unavailable", "the cluster part is not running"}));
      return ask<cluster::cluster_status>(
        sys, node_.cluster(),
        reply_with<cluster::cluster_status>(
          done, [](const cluster::cluster_status& s) { return to_json(s); }),
        caf::get_atom::value, cluster::status_atom::value);
    }
    if (is({"v1", "cluster", "rebalance"}) || is({"v1", "cluster", "nodes", "*", "drain"})) {
      if (!method("POST"))
        return wrong_method("POST");
      if (!node_.cluster())
        return done(error_response({503, "unavailable", "the cluster part is not running"}));
      // Accepted once the leader issued the view; entities move in the
      // background (GET /v1/cluster shows the shares and actors per node).
      auto accepted = [](const char* action, std::string id) {
        return [action, id](uint64_t epoch) {
          json out{{"accepted", action}, {"epoch", epoch}};
          if (!id.empty())
            out["node"] = id;
          return out;
        };
      };
      if (n == 3)
        return ask<uint64_t>(sys, node_.cluster(),
                             reply_with<uint64_t>(done, accepted("rebalance", ""), 202),
                             cluster::rebalance_atom::value);
      std::string id;
      if (!path_id(3, id))
        return bad();
      return ask<uint64_t>(sys, node_.cluster(),
                           reply_with<uint64_t>(done, accepted("drain", id), 202),
                           cluster::drain_atom::value, id);
    }
    return done(error_response({404, "not_found", "no such route: " + req.path}));
  }

  // --- sessions ---------------------------------------------------------------
  if (is({"v1", "sessions"})) {
    if (!method("POST"))
      return wrong_method("POST");
    auto j = body(true);
    if (!j)
      return bad();
    fields f{*j, &err};
    std::string device;
    auto initial = signal_kind::active;
    std::vector<std::string> rooms;
    if (!f.only({"device", "meta", "state", "rooms"}) || !f.string("device", device, false)
        || !f.signal("state", initial, false) || !f.id_list("rooms", rooms, 100))
      return bad();
    if (device.size() > 128)
      return done(error_response({400, "invalid_field", "'device' is at most 128 bytes"}));
    auto opened = r.open_session({who.user_id, device, initial, {}, {}});
    auto answer = session_created(opened);
    if (rooms.empty())
      return done(json_response(201, answer));
    // Join the rooms, then answer. A failed join fails the request: the
    // session is ended (nothing half-done stays behind) and the client retries.
    struct joins {
      std::mutex mtx;
      size_t pending = 0;      // guarded by mtx
      caf::error first_error;  // guarded by mtx
    };
    auto pending = std::make_shared<joins>();
    pending->pending = rooms.size();
    auto visible = who.role != role::guest;
    auto session = opened.handle;
    for (auto& room : rooms)
      ask<room_view>(sys, opened.handle,
                     [done, answer, pending, session](caf::expected<room_view> joined) {
                       caf::error failed;
                       {
                         std::lock_guard<std::mutex> guard{pending->mtx};
                         if (!joined && !pending->first_error)
                           pending->first_error = joined.error();
                         if (--pending->pending > 0)
                           return;
                         failed = pending->first_error;
                       }
                       if (!failed)
                         return done(json_response(201, answer));
                       caf::anon_send(session, leave_atom::value);
                       done(error_response(from_actor_error(failed)));
                     },
                     join_atom::value, room, visible);
    return;
  }
  if (n >= 3 && seg[1] == "sessions") {
    std::string sid;
    if (!path_id(2, sid))
      return bad();
    auto h = r.session(sid);
    if (is({"v1", "sessions", "*"})) {
      if (!h)
        return done(not_found_session());
      if (method("GET"))
        return ask<session_view>(sys, h,
                                 [done, who](caf::expected<session_view> v) {
                                   if (!v)
                                     return done(error_response(from_actor_error(v.error())));
                                   if (v->user_id != who.user_id && who.role != role::admin)
                                     return done(error_response(
                                       {403, "forbidden", "the session belongs to another user"}));
                                   done(json_response(200, to_json(*v)));
                                 },
                                 caf::get_atom::value);
      if (method("DELETE"))
        return ask_unit(sys, h,
                        no_content(done), leave_atom::value, acting);
      return wrong_method("GET or DELETE");
    }
    if (is({"v1", "sessions", "*", "signal"})) {
      if (!method("POST"))
        return wrong_method("POST");
      auto j = body(false);
      if (!j)
        return bad();
      fields f{*j, &err};
      auto sig = signal_kind::active;
      if (!f.only({"signal"}) || !f.signal("signal", sig, true))
        return bad();
      if (!h)
        return done(not_found_session());
      return ask<signal_reply>(sys, h,
                               reply_with<signal_reply>(done, [](const signal_reply& x) {
                                 return signal_answer(x);
                               }),
                               signal_atom::value, sig, acting);
    }
    if (is({"v1", "sessions", "*", "identify"})) {
      if (!method("POST"))
        return wrong_method("POST");
      auto j = body(false);
      if (!j)
        return bad();
      fields f{*j, &err};
      std::string token;
      if (!f.only({"token"}) || !f.string("token", token, true))
        return bad();
      std::string why;
      auto target = auth_.verify(token, node_.now_ms() / 1000, &why);
      if (!target)
        return done(error_response({401, "unauthorized", why}));
      if (target->role == role::guest)
        return done(error_response({400, "invalid_field", "identify needs a user token"}));
      if (!h)
        return done(not_found_session());
      return ask<session_view>(sys, h,
                               reply_with<session_view>(done, [](const session_view& v) {
                                 return to_json(v);
                               }),
                               identify_atom::value, target->user_id, acting);
    }
  }

  // --- users and presence -------------------------------------------------------
  if (is({"v1", "users", "*", "presence"}) || is({"v1", "users", "*", "intents"})) {
    if (!method("GET"))
      return wrong_method("GET");
    std::string uid;
    if (!path_id(2, uid))
      return bad();
    if (seg[3] == "presence") {
      if (!may_read_users(who))
        return done(error_response({403, "forbidden", "guests may not read users"}));
      return read_user(uid, reply_with<user_view>(done, [](const user_view& v) {
                         return to_json(v);
                       }));
    }
    if (uid != who.user_id && who.role != role::admin)
      return done(error_response({403, "forbidden", "only your own intents"}));
    return ask<intent_list>(sys, r.user(uid),
                            reply_with<intent_list>(done, [](const intent_list& l) {
                              json in = json::array(), out = json::array();
                              for (auto& v : l.incoming)
                                in.push_back(to_json(v));
                              for (auto& v : l.outgoing)
                                out.push_back(to_json(v));
                              return json{{"incoming", in}, {"outgoing", out}};
                            }),
                            list_atom::value, intent_atom::value);
  }
  if (is({"v1", "users", "*", "intents", "analytics"})) {
    if (!method("GET"))
      return wrong_method("GET");
    std::string uid;
    if (!path_id(2, uid))
      return bad();
    if (uid != who.user_id && who.role != role::admin)
      return done(error_response({403, "forbidden", "only your own intents"}));
    auto render = [](const analytics::user_intent_report& x) { return to_json(x); };
    std::optional<storage::user_record> rest;
    auto h = r.user_for_read(uid, &rest);
    if (!h) { // passivated, or never seen: its dormant record, or nothing
      auto x = analytics::summarize_user(rest ? rest->intents : storage::user_intent_analytics{},
                                         node_.now_ms());
      x.user_id = uid;
      return done(json_response(200, render(x)));
    }
    return ask<analytics::user_intent_report>(
      sys, h, reply_with<analytics::user_intent_report>(done, render),
      analytics_atom::value, intent_atom::value);
  }
  if (is({"v1", "presence", "query"})) {
    if (!method("POST"))
      return wrong_method("POST");
    if (!may_read_users(who))
      return done(error_response({403, "forbidden", "guests may not read users"}));
    auto j = body(false);
    if (!j)
      return bad();
    fields f{*j, &err};
    std::vector<std::string> users;
    if (!f.only({"users"}) || !f.id_list("users", users, max_query_users))
      return bad();
    auto results = std::make_shared<std::vector<json>>(users.size());
    auto state = std::make_shared<std::pair<std::mutex, size_t>>();
    state->second = users.size();
    if (users.empty())
      return done(json_response(200, {{"users", json::array()}}));
    for (size_t i = 0; i < users.size(); ++i)
      read_user(users[i],
                     [done, results, state, i, uid = users[i]](caf::expected<user_view> v) {
                       std::lock_guard<std::mutex> guard{state->first};
                       (*results)[i] = v ? to_json(*v)
                                         : json{{"user_id", uid},
                                                {"error", error_body(from_actor_error(
                                                            v.error()))["error"]}};
                       if (--state->second == 0)
                         done(json_response(200, {{"users", *results}}));
                     });
    return;
  }

  // --- rooms --------------------------------------------------------------------
  if (n >= 3 && seg[1] == "rooms") {
    std::string rid;
    if (!path_id(2, rid))
      return bad();
    auto render_room = [](const room_view& v) { return to_json(v); };
    if (is({"v1", "rooms", "*"})) {
      if (!method("GET"))
        return wrong_method("GET");
      room_query q;
      auto qi = req.query.find("limit");
      if (qi != req.query.end()
          && (!parse_int(qi->second, q.limit) || q.limit < 1 || q.limit > 1000))
        return done(error_response({400, "invalid_field", "limit must be in 1..1000"}));
      if (auto a = req.query.find("after"); a != req.query.end())
        q.after = a->second;
      if (auto c = req.query.find("counts_only"); c != req.query.end()) {
        if (c->second != "true" && c->second != "false")
          return done(error_response({400, "invalid_field", "counts_only must be true or false"}));
        q.counts_only = c->second == "true";
      }
      auto h = r.room_for_read(rid);
      if (!h) { // a room that never held anything: empty, and no actor for it
        room_view empty;
        empty.room_id = rid;
        return done(json_response(200, render_room(empty)));
      }
      return ask<room_view>(sys, h, reply_with<room_view>(done, render_room),
                            caf::get_atom::value, q);
    }
    if (is({"v1", "rooms", "*", "timeline"})) {
      if (!method("GET"))
        return wrong_method("GET");
      int64_t since = 0;
      auto qi = req.query.find("since");
      if (qi != req.query.end() && !parse_int(qi->second, since))
        return done(error_response({400, "invalid_field", "since must be an integer (ms)"}));
      auto h = r.room_for_read(rid);
      if (!h)
        return done(json_response(200, {{"samples", json::array()}}));
      return ask<std::vector<timeline_sample>>(
        sys, h,
        reply_with<std::vector<timeline_sample>>(done,
                                                 [](const std::vector<timeline_sample>& xs) {
                                                   json out = json::array();
                                                   for (auto& x : xs)
                                                     out.push_back(to_json(x));
                                                   return json{{"samples", out}};
                                                 }),
        timeline_atom::value, since);
    }
    if (is({"v1", "rooms", "*", "analytics"})) {
      if (!method("GET"))
        return wrong_method("GET");
      auto lim = analytics::limits_of(node_.rooms());
      int64_t since = 0;
      int64_t bucket_ms = lim.bucket_ms;
      if (auto qi = req.query.find("since");
          qi != req.query.end() && !parse_int(qi->second, since))
        return done(error_response({400, "invalid_field", "since must be an integer (ms)"}));
      if (auto qi = req.query.find("bucket_ms");
          qi != req.query.end() && !parse_int(qi->second, bucket_ms))
        return done(error_response({400, "invalid_field", "bucket_ms must be an integer (ms)"}));
      if (auto problem = analytics::check_query(since, bucket_ms, lim))
        return done(error_response({400, "invalid_field", *problem}));
      auto h = r.room_for_read(rid);
      if (!h) { // a room that never held anything: no figures, and no actor for it
        auto empty = analytics::summarize({}, node_.now_ms(), since, bucket_ms, lim);
        empty.room_id = rid;
        return done(json_response(200, to_json(empty)));
      }
      return ask<analytics::report>(
        sys, h,
        reply_with<analytics::report>(done,
                                      [](const analytics::report& x) { return to_json(x); }),
        analytics_atom::value, since, bucket_ms);
    }
    if (is({"v1", "rooms", "*", "start_when"})) {
      // Sets (POST, body: the rule) or clears (DELETE) the room's start_when
      // rule; answers the room view, which shows the rule and whether it holds.
      if (!method("POST") && !method("DELETE"))
        return wrong_method("POST or DELETE");
      if (who.role == role::guest)
        return done(error_response({403, "forbidden", "guests may not set start_when"}));
      storage::start_when_rule rule;
      if (method("POST")) {
        auto j = body(false);
        if (!j)
          return bad();
        fields f{*j, &err};
        if (!read_start_when(f, rule))
          return bad();
      }
      return ask<room_view>(sys, r.room(rid), reply_with<room_view>(done, render_room),
                            start_when_atom::value, rule);
    }
    if (is({"v1", "rooms", "*", "join"}) || is({"v1", "rooms", "*", "leave"})) {
      if (!method("POST"))
        return wrong_method("POST");
      auto j = body(false);
      if (!j)
        return bad();
      fields f{*j, &err};
      std::string sid;
      bool visible = who.role != role::guest;
      bool joining = seg[3] == "join";
      if (!(joining ? f.only({"session_id", "visible"}) : f.only({"session_id"}))
          || !f.id("session_id", sid, true) || !f.boolean("visible", visible, false))
        return bad();
      auto h = r.session(sid);
      if (!h)
        return done(not_found_session());
      if (joining)
        return ask<room_view>(sys, h, reply_with<room_view>(done, render_room),
                              join_atom::value, rid, visible, acting);
      return ask<room_view>(sys, h, reply_with<room_view>(done, render_room),
                            leave_room_atom::value, rid, acting);
    }
    if (is({"v1", "rooms", "*", "media"})) {
      if (!method("POST"))
        return wrong_method("POST");
      if (who.role == role::guest)
        return done(error_response({403, "forbidden", "guests may not set media"}));
      auto j = body(false);
      if (!j)
        return bad();
      fields f{*j, &err};
      bool attached = false;
      if (!f.only({"attached"}) || !f.boolean("attached", attached, true))
        return bad();
      return ask<room_view>(sys, r.room(rid), reply_with<room_view>(done, render_room),
                            media_atom::value, attached);
    }
  }

  // --- intents ------------------------------------------------------------------
  if (is({"v1", "intents"})) {
    if (!method("POST"))
      return wrong_method("POST");
    if (who.role == role::guest)
      return done(error_response({403, "forbidden", "guests may not create intents"}));
    auto j = body(false);
    if (!j)
      return bad();
    fields f{*j, &err};
    intent_spec spec;
    spec.from_user = who.user_id;
    if (!f.only({"to_user", "to_room", "kind", "ttl_ms", "note"})
        || !read_intent_spec(f, spec))
      return bad();
    auto created = r.create_intent(std::move(spec));
    if (!created)
      return done(error_response(from_actor_error(created.error())));
    return done(json_response(201, to_json(created->first)));
  }
  if (n >= 3 && seg[1] == "intents") {
    std::string iid;
    if (!path_id(2, iid))
      return bad();
    auto h = r.intent(iid);
    auto missing = [&] {
      done(error_response({404, "intent_not_found", "no such intent"}));
    };
    auto render_intent = [](const intent_view& v) { return to_json(v); };
    if (is({"v1", "intents", "*"})) {
      if (!method("GET"))
        return wrong_method("GET");
      if (!h)
        return missing();
      return ask<intent_view>(sys, h,
                              [done, who](caf::expected<intent_view> v) {
                                if (!v)
                                  return done(error_response(from_actor_error(v.error())));
                                // Intents into rooms are visible to any
                                // user; others to their two users.
                                if (who.role != role::admin && v->to_room.empty()
                                    && v->from_user != who.user_id
                                    && v->to_user != who.user_id)
                                  return done(error_response(
                                    {403, "forbidden", "not your intent"}));
                                done(json_response(200, to_json(*v)));
                              },
                              caf::get_atom::value);
    }
    if (n == 4 && (seg[3] == "accept" || seg[3] == "decline" || seg[3] == "cancel")) {
      if (!method("POST"))
        return wrong_method("POST");
      if (!h)
        return missing();
      auto cb = reply_with<intent_view>(done, render_intent);
      if (seg[3] == "accept")
        return ask<intent_view>(sys, h, cb, accept_atom::value, who.user_id);
      if (seg[3] == "decline")
        return ask<intent_view>(sys, h, cb, decline_atom::value, who.user_id);
      return ask<intent_view>(sys, h, cb, cancel_atom::value, who.user_id);
    }
  }
  done(error_response({404, "not_found", "no such route: " + req.path}));
}

} // namespace presence::gateway
