// Verifies the durable records: every kind survives a round trip through its
// bytes, keys are stable (timeline keys sort by room, then time), and a record
// with a missing field, a wrong type, an out-of-range enum, an unknown version
// or garbage bytes is refused with a reason.
#include "storage/codec.hpp"
#include "storage/records.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>

using namespace presence::storage;
using nlohmann::json;

namespace {

session_record sample_session() {
  session_record r;
  r.session_id = "s_abc";
  r.user_id = "alice";
  r.device = "laptop";
  r.resume_hash = std::string(32, '\x7f');
  r.resume_hash[0] = '\0';
  r.last_signal_at = 1'700'000'000'123;
  r.last_active_at = 1'700'000'000'000;
  r.declared = 2;
  r.ever_active = true;
  r.heartbeat_ms = 60000;
  r.rooms = {{"lobby", true}, {"ops", false}};
  return r;
}

template <class T>
T round_trip(const T& in) {
  record r = in;
  auto bytes = encode_record(r);
  std::string why;
  auto out = decode_record(kind_of(r), bytes, &why);
  EXPECT_TRUE(out) << why;
  EXPECT_TRUE(std::holds_alternative<T>(*out));
  return std::get<T>(*out);
}

} // namespace

TEST(RecordsTest, SessionRoundTrip) {
  auto in = sample_session();
  auto out = round_trip(in);
  EXPECT_EQ(out.session_id, in.session_id);
  EXPECT_EQ(out.user_id, in.user_id);
  EXPECT_EQ(out.device, in.device);
  EXPECT_EQ(out.resume_hash, in.resume_hash);
  EXPECT_EQ(out.last_signal_at, in.last_signal_at);
  EXPECT_EQ(out.last_active_at, in.last_active_at);
  EXPECT_EQ(out.declared, in.declared);
  EXPECT_EQ(out.ever_active, in.ever_active);
  EXPECT_EQ(out.heartbeat_ms, in.heartbeat_ms);
  EXPECT_EQ(out.rooms, in.rooms);
}

TEST(RecordsTest, UserRoomTimelineIntentRoundTrip) {
  user_record u{"bob", 4, 17, 1000, 999, 1001, {}};
  auto u2 = round_trip(u);
  EXPECT_EQ(u2.user_id, "bob");
  EXPECT_EQ(u2.published, 4);
  EXPECT_EQ(u2.seq, 17u);
  EXPECT_EQ(u2.since, 1000);
  EXPECT_EQ(u2.last_active_at, 999);
  EXPECT_EQ(u2.last_seen_at, 1001);

  room_record r{"lobby", true, 3, -2.5, 42, {}, {}};
  auto r2 = round_trip(r);
  EXPECT_EQ(r2.room_id, "lobby");
  EXPECT_TRUE(r2.media_attached);
  EXPECT_EQ(r2.phase, 3);
  EXPECT_DOUBLE_EQ(r2.momentum_rate, -2.5);
  EXPECT_EQ(r2.momentum_at, 42);

  timeline_record t{"lobby", 5000, {0, 1, 2, 3, 4}, 0.45, 1};
  auto t2 = round_trip(t);
  EXPECT_EQ(t2.counts, t.counts);
  EXPECT_DOUBLE_EQ(t2.readiness, 0.45);
  EXPECT_EQ(t2.t, 5000);

  intent_record i{"i_1", "alice", "bob", "", "call", "hi", 1, 10, 20, 15, 15, 0};
  auto i2 = round_trip(i);
  EXPECT_EQ(i2.intent_id, "i_1");
  EXPECT_EQ(i2.from_user, "alice");
  EXPECT_EQ(i2.to_user, "bob");
  EXPECT_EQ(i2.note, "hi");
  EXPECT_EQ(i2.status, 1);
  EXPECT_EQ(i2.expires_at, 20);
  EXPECT_EQ(i2.delivered_at, 15);
}

TEST(RecordsTest, KeysFollowKindAndId) {
  EXPECT_EQ(key_of(record{sample_session()}), "s_abc");
  EXPECT_EQ(kind_of(record{sample_session()}), kind::sessions);
  EXPECT_EQ(kind_of(record{timeline_record{}}), kind::timeline);
  // One room's samples are adjacent and in time order, whatever the other rooms.
  std::vector<std::string> keys = {timeline_key("b", 1), timeline_key("a", 300),
                                   timeline_key("a", 2), timeline_key("ab", 1),
                                   timeline_key("a", 256)};
  std::sort(keys.begin(), keys.end());
  EXPECT_EQ(keys, (std::vector<std::string>{timeline_key("a", 2), timeline_key("a", 256),
                                            timeline_key("a", 300), timeline_key("ab", 1),
                                            timeline_key("b", 1)}));
}

TEST(RecordsTest, RefusesBadRecordsWithAReason) {
  auto session_json = [] {
    return json{{"sid", "s"}, {"uid", "u"}, {"dev", ""},
                {"tok", json::binary(std::vector<uint8_t>(32, 1))},
                {"ls", 1}, {"la", 1}, {"dec", 0}, {"ea", true}, {"hb", 10},
                {"rooms", json::array()}};
  };
  struct row {
    const char* name;
    kind k;
    std::string bytes;
    const char* reason; // a part of the message
  };
  auto without = [&](const char* field) {
    auto j = session_json();
    j.erase(field);
    return encode(j);
  };
  auto with = [&](const char* field, json v) {
    auto j = session_json();
    j[field] = std::move(v);
    return encode(j);
  };
  std::string future = encode(session_json());
  future[0] = static_cast<char>(record_version + 1);
  std::vector<row> rows = {
    {"missing field", kind::sessions, without("uid"), "'uid' is missing"},
    {"wrong type", kind::sessions, with("ls", "soon"), "'ls' has the wrong type"},
    {"short hash", kind::sessions, with("tok", json::binary(std::vector<uint8_t>(3, 1))),
     "32-byte hash"},
    {"bad rooms", kind::sessions, with("rooms", json::array({1})), "[id, visible]"},
    {"bad signal", kind::sessions, with("dec", 9), "not a signal"},
    {"bad state", kind::users,
     encode({{"uid", "u"}, {"st", 7}, {"seq", 1}, {"since", 0}, {"la", 0}, {"lseen", 0}}),
     "not a state"},
    {"negative seq", kind::users,
     encode({{"uid", "u"}, {"st", 1}, {"seq", -1}, {"since", 0}, {"la", 0}, {"lseen", 0}}),
     "'seq' has the wrong type"},
    {"unknown version", kind::sessions, future, "unknown record version"},
    {"garbage", kind::sessions, std::string{"\x01\xc1\xff\x00", 4}, "corrupt"},
    {"truncated", kind::sessions, encode(session_json()).substr(0, 20), "corrupt"},
    {"empty", kind::sessions, "", "empty record"},
    {"not an object", kind::rooms, encode(json::array({1, 2})), "not an object"},
  };
  for (auto& r : rows) {
    std::string why;
    EXPECT_FALSE(decode_record(r.k, r.bytes, &why)) << r.name;
    EXPECT_NE(why.find(r.reason), std::string::npos) << r.name << ": " << why;
  }
  // The unmodified record decodes: the table's failures are the changes.
  std::string why;
  EXPECT_TRUE(decode_record(kind::sessions, encode(session_json()), &why)) << why;
}

// Verifies that the records are genuine MessagePack (another reader decodes
// them) and that a field added by a newer writer is skipped, not refused.
TEST(RecordsTest, IsMessagePackAndSkipsUnknownFields) {
  std::string why;
  auto j = decode(encode_record(record{sample_session()}), &why);
  ASSERT_TRUE(j) << why;
  EXPECT_EQ((*j)["sid"], "s_abc");
  EXPECT_EQ((*j)["rooms"][1][0], "ops");
  EXPECT_EQ((*j)["ls"], 1'700'000'000'123);
  auto newer = *j;
  newer["future"] = json::array({1, {{"a", -70000}}, "x", 2.5, nullptr, false});
  newer["tok"] = json::binary(std::vector<uint8_t>(32, 9));
  auto r = decode_record(kind::sessions, encode(newer), &why);
  ASSERT_TRUE(r) << why;
  EXPECT_EQ(std::get<session_record>(*r).rooms.size(), 2u);
  // Bytes after the record's end are corruption, not a newer field.
  auto padded = encode_record(record{sample_session()}) + "\x01";
  EXPECT_FALSE(decode_record(kind::sessions, padded, &why));
  EXPECT_NE(why.find("after its end"), std::string::npos) << why;
}

// Verifies a room's analytics round-trip in its record (every field), that a
// record written before analytics existed (no "an") decodes with none, and
// that analytics of the wrong shape or beyond the caps are refused.
TEST(RecordsTest, RoomAnalyticsRoundTripAndOlderRecords) {
  room_record r{"lobby", false, 2, 1.5, 7, {}, {}};
  auto& a = r.analytics;
  a.seg_at = 1'700'000'060'000;
  a.seg_readiness = 0.9;
  a.seg_phase = 2;
  a.media_off_at = 1'700'000'000'500;
  a.revision = 77;
  analytics_bucket b;
  b.t = 1'700'000'040'000;
  b.readiness_min = 0.25;
  b.readiness_max = 0.875;
  b.readiness_ms = 12345.5;
  b.phase_ms = {0, 100, 200, 300};
  b.joins = 4;
  b.leaves = 3;
  b.left_before_ready = 2;
  b.left_quickly = 1;
  b.left_before_ready_quickly = 1;
  b.intents_final = {5, 6, 7, 8};
  b.intents_final_delivered = 9;
  a.buckets = {b, b};
  a.intent_times = {{1'700'000'044'000, 300, 5}, {1'700'000'045'000, 400, 6}};
  a.buckets[1].t += 60000;
  a.stays = {{1'700'000'041'000, 900, 0}};
  a.decays = {{1'700'000'042'000, 1000, 1}, {1'700'000'043'000, 2000, 4}};
  a.episodes = {{1, 2, 3, 4, 5, 0.5, 6, 0.25}, {10, 0, 0, 0, 0, 0, 0, 0}};
  auto r2 = round_trip(r);
  auto& x = r2.analytics;
  EXPECT_EQ(x.seg_at, a.seg_at);
  EXPECT_DOUBLE_EQ(x.seg_readiness, 0.9);
  EXPECT_EQ(x.seg_phase, 2);
  EXPECT_EQ(x.media_off_at, a.media_off_at);
  EXPECT_EQ(x.revision, 77u);
  ASSERT_EQ(x.buckets.size(), 2u);
  EXPECT_EQ(x.buckets[1].t, b.t + 60000);
  EXPECT_DOUBLE_EQ(x.buckets[0].readiness_min, 0.25);
  EXPECT_DOUBLE_EQ(x.buckets[0].readiness_max, 0.875);
  EXPECT_DOUBLE_EQ(x.buckets[0].readiness_ms, 12345.5);
  EXPECT_EQ(x.buckets[0].phase_ms, b.phase_ms);
  EXPECT_EQ(x.buckets[0].joins, 4);
  EXPECT_EQ(x.buckets[0].leaves, 3);
  EXPECT_EQ(x.buckets[0].left_before_ready, 2);
  EXPECT_EQ(x.buckets[0].left_quickly, 1);
  EXPECT_EQ(x.buckets[0].left_before_ready_quickly, 1);
  EXPECT_EQ(x.buckets[1].intents_final, b.intents_final);
  EXPECT_EQ(x.buckets[1].intents_final_delivered, 9);
  ASSERT_EQ(x.intent_times.size(), 2u);
  EXPECT_EQ(x.intent_times[1].kind, 6);
  EXPECT_EQ(x.intent_times[1].ms, 400);
  ASSERT_EQ(x.stays.size(), 1u);
  EXPECT_EQ(x.stays[0].ms, 900);
  ASSERT_EQ(x.decays.size(), 2u);
  EXPECT_EQ(x.decays[1].t, 1'700'000'043'000);
  EXPECT_EQ(x.decays[1].kind, 4);
  ASSERT_EQ(x.episodes.size(), 2u);
  EXPECT_EQ(x.episodes[0].ended_at, 4);
  EXPECT_EQ(x.episodes[0].present_at_cooling, 6);
  EXPECT_DOUBLE_EQ(x.episodes[0].readiness_at_cooling, 0.25);
  EXPECT_EQ(x.episodes[1].started_at, 10);

  std::string why;
  json older{{"rid", "old"}, {"media", true}, {"ph", 1}, {"mr", 0.0}, {"mat", 0}};
  auto o = decode_record(kind::rooms, encode(older), &why);
  ASSERT_TRUE(o) << why;
  EXPECT_EQ(std::get<room_record>(*o).analytics.revision, 0u);
  EXPECT_TRUE(std::get<room_record>(*o).analytics.buckets.empty());

  auto with_an = [&](json an) {
    auto j = older;
    j["an"] = std::move(an);
    return encode(j);
  };
  auto empty_an = json::array({0, 0.0, 0, 0, 0, json::array(), json::array(), json::array(),
                               json::array()});
  EXPECT_TRUE(decode_record(kind::rooms, with_an(empty_an), &why)) << why;
  // Written before intent outcomes: 9 lists, 12-value buckets.
  auto before_intents = empty_an;
  before_intents[5] = json::array({json::array({60000, 0.5, 0.5, 500.0, 1000, 0, 0, 2, 1, 0,
                                                0, 0})});
  auto old_an = decode_record(kind::rooms, with_an(before_intents), &why);
  ASSERT_TRUE(old_an) << why;
  auto& old_bucket = std::get<room_record>(*old_an).analytics.buckets.at(0);
  EXPECT_EQ(old_bucket.joins, 2);
  EXPECT_EQ(old_bucket.intents_final, (std::array<int64_t, 4>{}));
  auto with_intents = empty_an;
  with_intents.push_back(json::array({json::array({1, 2, 6})}));
  EXPECT_TRUE(decode_record(kind::rooms, with_an(with_intents), &why)) << why;
  auto stay_as_intent = empty_an;
  stay_as_intent.push_back(json::array({json::array({1, 2, 0})}));
  auto bad_kind = empty_an;
  bad_kind[6] = json::array({json::array({1, 2, 5})});
  auto too_many = empty_an;
  too_many[7] = json::array();
  for (uint32_t i = 0; i <= max_stored_analytics_items; ++i)
    too_many[7].push_back(json::array({1, 2, 1}));
  auto short_bucket = empty_an;
  short_bucket[5] = json::array({json::array({1, 2, 3})});
  for (auto& bad :
       {json::array({1, 2}), bad_kind, too_many, short_bucket, json{"x"}, stay_as_intent}) {
    why.clear();
    EXPECT_FALSE(decode_record(kind::rooms, with_an(bad), &why)) << bad.dump().substr(0, 80);
    EXPECT_NE(why.find("'an'"), std::string::npos) << why;
  }
}

// Verifies the size of a room record holding a full day of one-minute buckets
// and the sample and episode caps (figures for the README: printed).
TEST(RecordsTest, RoomAnalyticsOfADayStayUnder128KiB) {
  room_record r{"lobby", false, 2, 1.5, 7, {}, {}};
  auto& a = r.analytics;
  a.seg_at = 1'700'000'000'000;
  for (int64_t i = 0; i < 1440; ++i) {
    analytics_bucket b;
    b.t = 1'700'000'000'000 + i * 60000;
    b.readiness_min = 0.123456789;
    b.readiness_max = 0.987654321;
    b.readiness_ms = 45678.901;
    b.phase_ms = {0, 20000, 30000, 10000};
    b.joins = 12;
    b.leaves = 11;
    b.left_before_ready = 3;
    b.left_quickly = 2;
    b.left_before_ready_quickly = 1;
    a.buckets.push_back(b);
  }
  for (int64_t i = 0; i < 512; ++i) {
    a.stays.push_back({1'700'000'000'000 + i * 1000, 123456, 0});
    a.decays.push_back({1'700'000'000'000 + i * 1000, 15000, 2});
  }
  for (int64_t i = 0; i < 64; ++i)
    a.episodes.push_back({1'700'000'000'000 + i, 1'700'000'000'300 + i,
                          1'700'000'000'900 + i, 1'700'000'001'000 + i, 5, 0.9, 4, 0.45});
  auto bytes = encode_record(record{r}).size();
  std::printf("room record with a day of one-minute buckets, 512 stays, 512 decays, "
              "64 episodes: %zu bytes\n", bytes);
  EXPECT_LT(bytes, 128u * 1024);
  EXPECT_EQ(round_trip(r).analytics.buckets.size(), 1440u);
}

// Verifies a user's intent outcomes (field "io") and a room's start_when rule
// (field "sw") survive a round trip; records without them stay as they were
// (no field written, so older nodes read them) and decode with none; a bad
// rule or outcome list is refused with a reason.
TEST(RecordsTest, IntentOutcomesAndStartWhenRoundTrip) {
  user_record u{"alice", 1, 7, 100, 90, 95, {}};
  auto plain = encode_record(u);
  u.intents.revision = 5;
  u.intents.outgoing.final = {1, 2, 3, 4};
  u.intents.outgoing.final_delivered = 6;
  u.intents.outgoing.times = {{10, 200, analytics_sample::intent_to_delivered},
                              {20, 300, analytics_sample::intent_to_answer}};
  u.intents.incoming.final = {0, 1, 0, 0};
  u.intents.incoming.times = {{30, 40, analytics_sample::intent_to_answer}};
  auto u2 = round_trip(u);
  EXPECT_EQ(u2.seq, 7u);
  EXPECT_EQ(u2.intents.revision, 5u);
  EXPECT_EQ(u2.intents.outgoing.final, u.intents.outgoing.final);
  EXPECT_EQ(u2.intents.outgoing.final_delivered, 6);
  ASSERT_EQ(u2.intents.outgoing.times.size(), 2u);
  EXPECT_EQ(u2.intents.outgoing.times[1].ms, 300);
  EXPECT_EQ(u2.intents.outgoing.times[1].kind, analytics_sample::intent_to_answer);
  EXPECT_EQ(u2.intents.incoming.final, u.intents.incoming.final);
  ASSERT_EQ(u2.intents.incoming.times.size(), 1u);
  EXPECT_GT(encode_record(u).size(), plain.size());
  u.intents = {};
  EXPECT_EQ(encode_record(u), plain) << "no outcomes: the record is what it was";
  EXPECT_EQ(round_trip(u).intents.revision, 0u);

  room_record r;
  r.room_id = "lobby";
  auto plain_room = encode_record(r);
  r.start_when.rule = {0.7, 3, 3000};
  r.start_when.met_since = 1234;
  r.start_when.holding = true;
  auto r2 = round_trip(r);
  EXPECT_TRUE(r2.start_when.rule == r.start_when.rule);
  EXPECT_EQ(r2.start_when.met_since, 1234);
  EXPECT_TRUE(r2.start_when.holding);
  r.start_when = {};
  EXPECT_EQ(encode_record(r), plain_room) << "no rule: the record is what it was";
  EXPECT_FALSE(round_trip(r).start_when.rule.set());

  // A rule whose readiness is out of range is refused, with a reason.
  r.start_when.rule = {1.5, 0, 0};
  std::string why;
  EXPECT_FALSE(decode_record(kind::rooms, encode_record(r), &why));
  EXPECT_NE(why.find("'sw'"), std::string::npos) << why;
  // A sample of a kind that is not an intent time is refused.
  u.intents.revision = 1;
  u.intents.outgoing.times = {{10, 20, analytics_sample::stay}};
  why.clear();
  EXPECT_FALSE(decode_record(kind::users, encode_record(u), &why));
  EXPECT_NE(why.find("'io'"), std::string::npos) << why;
}
