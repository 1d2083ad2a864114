// Verifies the strict readers of request bodies and frames, one row per error.
#include "gateway/json_codec.hpp"

#include <gtest/gtest.h>

using namespace presence::gateway;

TEST(JsonCodecTest, ParseObject) {
  api_error err;
  EXPECT_TRUE(parse_object("", true, &err));
  EXPECT_FALSE(parse_object("  ", false, &err));
  EXPECT_EQ(err.code, "invalid_json");
  EXPECT_FALSE(parse_object("{", false, &err));
  EXPECT_FALSE(parse_object("[]", false, &err));
  EXPECT_FALSE(parse_object("\"x\"", false, &err));
  EXPECT_TRUE(parse_object(R"({"a":1})", false, &err));
}

TEST(JsonCodecTest, FieldReaders) {
  struct row {
    std::string name;
    std::string body;
    std::string code; // empty: accepted
  };
  std::vector<row> rows = {
    {"ok", R"({"signal":"idle","to_user":"bob","ttl_ms":5})", ""},
    {"bad signal", R"({"signal":"sleepy"})", "invalid_signal"},
    {"signal not a string", R"({"signal":3})", "invalid_field"},
    {"bad id", R"({"to_user":"a b"})", "invalid_id"},
    {"long id", "{\"to_user\":\"" + std::string(129, 'a') + "\"}", "invalid_id"},
    {"empty id", R"({"to_user":""})", "invalid_id"},
    {"ttl too big", R"({"ttl_ms":86400001})", "invalid_field"},
    {"ttl not integer", R"({"ttl_ms":1.5})", "invalid_field"},
    {"note too long", "{\"note\":\"" + std::string(1025, 'n') + "\"}", "invalid_field"},
    {"unknown field", R"({"bogus":1})", "unknown_field"},
  };
  for (auto& r : rows) {
    api_error err;
    auto j = parse_object(r.body, false, &err);
    ASSERT_TRUE(j) << r.name;
    fields f{*j, &err};
    presence::actors::intent_spec spec;
    auto sig = presence::actors::signal_kind::active;
    bool ok = f.only({"signal", "to_user", "to_room", "kind", "ttl_ms", "note"})
              && f.signal("signal", sig, false) && read_intent_spec(f, spec);
    EXPECT_EQ(ok, r.code.empty()) << r.name;
    if (!r.code.empty()) {
      EXPECT_EQ(err.code, r.code) << r.name << ": " << err.message;
    }
  }
}

// Verifies the JSON of a room's analytics: percentiles without values are
// null, phase shares are fractions of the span (all 0 for an empty span),
// readiness is null for a bucket nobody was present in, and an episode's
// unknown start, readiness or cooling are null (and so its time to ready).
TEST(JsonCodecTest, AnalyticsReport) {
  namespace an = presence::actors::analytics;
  an::report r;
  r.room_id = "r";
  r.bucket_ms = 1000;
  r.phase = presence::actors::room_phase::ready;
  an::report_bucket full;
  full.t = 5000;
  full.span_ms = 1000;
  full.present_ms = 750;
  full.readiness_min = 0.25;
  full.readiness_mean = 0.5;
  full.readiness_max = 0.75;
  full.phase_ms = {250, 0, 500, 250};
  full.to_idle = {3, 10, 30};
  an::report_bucket nothing;
  nothing.t = 6000;
  r.buckets = {full, nothing};
  r.stay = {1, 42, 42};
  presence::storage::analytics_episode known{100, 400, 0, 0, 2, 0.9, 0, 0};
  presence::storage::analytics_episode unknown{0, 0, 700, 900, 0, 0, 1, 0.3};
  r.episodes = {known, unknown};
  auto j = to_json(r);
  EXPECT_EQ(j["phase"], "ready");
  EXPECT_TRUE(j["kept_from"].is_null());
  auto& b = j["buckets"][0];
  EXPECT_DOUBLE_EQ(b["phase_share"]["empty"].get<double>(), 0.25);
  EXPECT_DOUBLE_EQ(b["phase_share"]["ready"].get<double>(), 0.5);
  EXPECT_EQ(b["phase_ms"]["cooling"], 250);
  EXPECT_DOUBLE_EQ(b["readiness"]["mean"].get<double>(), 0.5);
  EXPECT_EQ(b["attention_decay"]["to_idle"], (json{{"n", 3}, {"p50", 10}, {"p90", 30}}));
  EXPECT_EQ(b["attention_decay"]["to_away"], (json{{"n", 0}, {"p50", nullptr}, {"p90", nullptr}}));
  auto& e = j["buckets"][1];
  EXPECT_TRUE(e["readiness"].is_null());
  EXPECT_EQ(e["phase_share"]["empty"], 0.0);
  EXPECT_EQ(j["stay_ms"]["p90"], 42);
  EXPECT_EQ(j["episodes"][0]["time_to_ready_ms"], 300);
  EXPECT_EQ(j["episodes"][0]["at_ready"], (json{{"present", 2}, {"readiness", 0.9}}));
  EXPECT_TRUE(j["episodes"][0]["at_cooling"].is_null());
  EXPECT_TRUE(j["episodes"][0]["ended_at"].is_null());
  EXPECT_TRUE(j["episodes"][1]["started_at"].is_null());
  EXPECT_TRUE(j["episodes"][1]["time_to_ready_ms"].is_null());
  EXPECT_EQ(j["episodes"][1]["at_cooling"]["present"], 1);
  EXPECT_TRUE(j["intents"]["delivered_share"].is_null()) << "no intent ended";
  EXPECT_EQ(j["intents"]["final"]["accepted"], 0);
  r.intents.final = {3, 1, 0, 0};
  r.intents.final_delivered = 3;
  r.intents.to_answer = {3, 100, 900};
  auto k = to_json(r);
  EXPECT_DOUBLE_EQ(k["intents"]["delivered_share"].get<double>(), 0.75);
  EXPECT_EQ(k["intents"]["final"]["declined"], 1);
  EXPECT_EQ(k["intents"]["to_answer_ms"]["p90"], 900);
}

// Verifies the start_when body, one row per accepted shape and per error: at
// least one condition, each in its range, no unknown field; and its JSON back
// (the unset conditions left out, no rule as null).
TEST(JsonCodecTest, StartWhenRule) {
  struct row {
    std::string body;
    bool ok;
    std::string mentions; // a part of the error message
  };
  std::vector<row> rows = {
    {R"({"readiness_at_least":0.7,"for_ms":3000})", true, ""},
    {R"({"readiness_at_least":1})", true, ""},
    {R"({"active_visible_members_at_least":3})", true, ""},
    {R"({"readiness_at_least":0.5,"active_visible_members_at_least":2,"for_ms":0})", true, ""},
    {R"({"active_visible_members_at_least":1,"for_ms":3600000})", true, ""},
    {R"({})", false, "needs"},
    {R"({"for_ms":10})", false, "needs"},
    {R"({"readiness_at_least":null,"active_visible_members_at_least":null})", false, "needs"},
    {R"({"readiness_at_least":0})", false, "readiness_at_least"},
    {R"({"readiness_at_least":1.01})", false, "readiness_at_least"},
    {R"({"readiness_at_least":"0.7"})", false, "readiness_at_least"},
    {R"({"active_visible_members_at_least":0})", false, "active_visible_members_at_least"},
    {R"({"active_visible_members_at_least":1000001})", false,
     "active_visible_members_at_least"},
    {R"({"active_visible_members_at_least":2.5})", false, "active_visible_members_at_least"},
    {R"({"active_visible_members_at_least":2,"for_ms":-1})", false, "for_ms"},
    {R"({"active_visible_members_at_least":2,"for_ms":3600001})", false, "for_ms"},
    {R"({"active_visible_members_at_least":2,"hold_ms":5})", false, "hold_ms"},
  };
  for (auto& r : rows) {
    api_error err;
    auto j = parse_object(r.body, false, &err);
    ASSERT_TRUE(j) << r.body;
    fields f{*j, &err};
    presence::storage::start_when_rule rule;
    EXPECT_EQ(read_start_when(f, rule), r.ok) << r.body;
    if (r.ok) {
      EXPECT_TRUE(rule.set()) << r.body;
      auto back = to_json(rule);
      for (auto& [k, v] : j->items())
        EXPECT_EQ(back[k], v) << r.body << " -> " << back.dump();
    } else {
      EXPECT_EQ(err.status, 400u) << r.body;
      EXPECT_NE(err.message.find(r.mentions), std::string::npos) << r.body << ": " << err.message;
    }
  }
  EXPECT_TRUE(to_json(presence::storage::start_when_rule{}).is_null());
}

// Verifies the threshold room event carries holding and at (and other room
// events do not), the room view its rule, and a user's intent report both
// directions.
TEST(JsonCodecTest, ThresholdEventViewAndUserOutcomes) {
  presence::actors::room_event e;
  e.room_id = "r";
  e.event = "threshold";
  e.holding = true;
  e.at = 1234;
  auto j = to_json(e);
  EXPECT_EQ(j["op"], "room");
  EXPECT_EQ(j["event"], "threshold");
  EXPECT_EQ(j["holding"], true);
  EXPECT_EQ(j["at"], 1234);
  EXPECT_FALSE(j.contains("user_id"));
  e.event = "phase";
  EXPECT_FALSE(to_json(e).contains("holding"));
  presence::actors::room_view v;
  EXPECT_TRUE(to_json(v)["start_when"].is_null());
  EXPECT_EQ(to_json(v)["threshold_holding"], false);
  v.start_when = {0, 3, 0};
  v.threshold_holding = true;
  EXPECT_EQ(to_json(v)["start_when"], (json{{"active_visible_members_at_least", 3},
                                            {"for_ms", 0}}));
  EXPECT_EQ(to_json(v)["threshold_holding"], true);
  presence::actors::analytics::user_intent_report u;
  u.user_id = "alice";
  u.outgoing.final = {1, 0, 1, 0};
  u.outgoing.final_delivered = 1;
  auto k = to_json(u);
  EXPECT_EQ(k["user_id"], "alice");
  EXPECT_DOUBLE_EQ(k["outgoing"]["delivered_share"].get<double>(), 0.5);
  EXPECT_EQ(k["outgoing"]["final"]["expired"], 1);
  EXPECT_TRUE(k["incoming"]["delivered_share"].is_null());
  EXPECT_TRUE(k["incoming"]["to_answer_ms"]["p50"].is_null());
}
