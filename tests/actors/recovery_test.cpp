// Verifies snapshots and recovery under controlled time: a node writes its
// entities through the writer, stops, and a second node started later on the same
// store gets them back with states derived from its own clock: everything after a
// short stop (and the session resumes with its token), stale after a downtime
// past stale_after_ms, gone after offline_after_ms (users keep last_active_at and
// seq moves by one), intents pending, expired or forgotten as their times say,
// timelines bounded, unreadable records skipped and counted, and signals
// snapshotted at most once per flush interval but never lost at a clean stop.
#include "support/test_node.hpp"

#include "actors/census.hpp"
#include "actors/handoff.hpp"
#include "support/fake_placement.hpp"

#include "storage/records.hpp"
#include "storage/store.hpp"

#include <caf/send.hpp>

using namespace presence::actors;
using presence::testing::recorded;
using presence::testing::test_node;
namespace storage = presence::storage;

namespace {

class RecoveryTest : public ::testing::Test {
protected:
  std::unique_ptr<storage::store> store = storage::make_memory_store();
  presence::config::settings cfg = test_node::default_settings();

  // A node on the shared store, starting `at` ms after t0.
  std::unique_ptr<test_node> start(int64_t at) {
    return std::make_unique<test_node>(cfg, store.get(), test_node::t0 + at);
  }

  static user_view user(test_node& n, const std::string& id) {
    auto v = n.ask<user_view>(n.node().router().user(id), caf::get_atom::value);
    EXPECT_TRUE(v);
    return v ? *v : user_view{};
  }

  static room_view room(test_node& n, const std::string& id) {
    auto v = n.ask<room_view>(n.node().router().room(id), caf::get_atom::value,
                              room_query{});
    EXPECT_TRUE(v);
    return v ? *v : room_view{};
  }

  static intent_view intent(test_node& n, const std::string& id) {
    auto h = n.node().router().intent(id);
    EXPECT_TRUE(h) << id << " is not restored";
    if (!h)
      return {};
    auto v = n.ask<intent_view>(h, caf::get_atom::value);
    return v ? *v : intent_view{};
  }

  // Another node's copy of a key: it answers a pull with `t`.
  template <class Transfer>
  static caf::actor holder_of(test_node& n, Transfer t) {
    return n.sys().spawn(
      [](caf::event_based_actor*, Transfer t) -> caf::behavior {
        return {[t](handoff_atom, const std::string&, uint64_t, const caf::actor&) {
          return t;
        }};
      },
      std::move(t));
  }

  // alice's intent to carol as the node that held it accepted it.
  static storage::intent_record accepted_intent(const std::string& id) {
    storage::intent_record rec;
    rec.intent_id = id;
    rec.from_user = "alice";
    rec.to_user = "carol";
    rec.kind = "call";
    rec.status = static_cast<uint8_t>(intent_status::accepted);
    rec.created_at = test_node::t0;
    rec.expires_at = test_node::t0 + 60000;
    rec.delivered_at = test_node::t0 + 300;
    rec.ready_at = test_node::t0 + 300;
    rec.retain_until = test_node::t0 + 400 + finished_intent_retention_ms;
    return rec;
  }

  size_t records(storage::kind k) {
    size_t count = 0;
    store->scan(k, [&](std::string_view, std::string_view) { ++count; });
    return count;
  }

  // What the first node leaves behind: alice (two tabs, one in the lobby,
  // visible) and bob (in the lobby), media on, an intent alice -> carol (offline,
  // so pending), 500 ms of life.
  struct scene {
    opened_session alice_tab;
    opened_session alice_phone;
    opened_session bob;
    std::string intent_id;
    user_view alice_before;
    room_view lobby_before;
    int64_t stopped_at = 0;
  };

  scene play_first_node() {
    scene sc;
    auto a = start(0);
    sc.alice_tab = a->open("alice");
    sc.alice_phone = a->open("alice", signal_kind::background, "phone");
    sc.bob = a->open("bob");
    auto& r = a->node().router();
    EXPECT_TRUE(a->ask<room_view>(r.session(sc.alice_tab.session_id), join_atom::value,
                                  std::string{"lobby"}, true));
    EXPECT_TRUE(a->ask<room_view>(r.session(sc.bob.session_id), join_atom::value,
                                  std::string{"lobby"}, true));
    EXPECT_TRUE(a->ask<room_view>(r.room("lobby"), media_atom::value, true));
    auto created = r.create_intent({"alice", "carol", "", "call", "hi", 60000});
    EXPECT_TRUE(created);
    sc.intent_id = created->first.intent_id;
    a->advance(500);
    sc.alice_before = user(*a, "alice");
    sc.lobby_before = room(*a, "lobby");
    sc.stopped_at = a->node().now_ms();
    a->flush();
    return sc; // the node stops here, as with SIGTERM
  }
};

} // namespace

// Verifies that a restart shortly after a stop brings back every entity as it
// was: sessions (same state, clocks and rooms; resumable with their token), the
// user's seq and state unchanged, the room's members and media flag, the pending
// intent, which is delivered once its target becomes active.
TEST_F(RecoveryTest, RestartBringsEverythingBack) {
  auto sc = play_first_node();
  EXPECT_EQ(records(storage::kind::sessions), 3u);
  auto b = start(600);
  auto report = b->recover(*store);
  EXPECT_EQ(report.sessions, 3u);
  EXPECT_EQ(report.users, 2u);
  EXPECT_EQ(report.users_dormant, 0u); // carol never had a session: no record
  EXPECT_EQ(report.rooms, 1u);
  EXPECT_EQ(report.intents, 1u);
  EXPECT_EQ(report.skipped, 0u);
  auto& r = b->node().router();
  auto tab = r.session(sc.alice_tab.session_id);
  ASSERT_TRUE(tab);
  auto v = b->ask<session_view>(tab, resume_atom::value, sc.alice_tab.resume_token);
  ASSERT_TRUE(v) << render(v.error());
  EXPECT_EQ(v->current, state::active);
  EXPECT_EQ(v->last_signal_at, test_node::t0);
  EXPECT_EQ(v->rooms, (std::vector<std::string>{"lobby"}));
  EXPECT_FALSE(b->ask<session_view>(tab, resume_atom::value, std::string{"wrong"}));
  auto alice = user(*b, "alice");
  EXPECT_EQ(alice.current, state::active);
  EXPECT_EQ(alice.seq, sc.alice_before.seq);
  EXPECT_EQ(alice.since, sc.alice_before.since);
  EXPECT_EQ(alice.sessions.size(), 2u);
  auto lobby = room(*b, "lobby");
  EXPECT_TRUE(lobby.media_attached);
  ASSERT_EQ(lobby.members.size(), 2u);
  EXPECT_EQ(lobby.members[0].user_id, "alice");
  EXPECT_EQ(lobby.members[1].user_id, "bob");
  EXPECT_EQ(lobby.counts[static_cast<size_t>(state::active)], 2);
  EXPECT_EQ(lobby.phase, room_phase::ready);
  // Restored members are not joins: momentum only decayed meanwhile.
  EXPECT_GT(sc.lobby_before.momentum, 0.5);
  EXPECT_LE(lobby.momentum, sc.lobby_before.momentum);
  EXPECT_EQ(intent(*b, sc.intent_id).status, intent_status::pending);
  // The restored intent still waits for carol, and reaches her when she comes.
  b->open("carol");
  EXPECT_EQ(intent(*b, sc.intent_id).status, intent_status::delivered);
  // The restored session keeps decaying on the new node's timer.
  b->walk_to(1000 + 50);
  EXPECT_EQ(b->ask<session_view>(tab, caf::get_atom::value)->current, state::idle);
}

// Verifies seq after a crash: the records may be behind what the node published
// before it died, so every user resumes at the next seq generation (above any
// seq of the last run), dormant ones included; the next change counts from
// there. After a clean stop (the test above) seq is unchanged.
TEST_F(RecoveryTest, RecoveryAfterACrashStartsTheNextSeqGeneration) {
  auto sc = play_first_node();
  ASSERT_LT(sc.alice_before.seq, uint64_t{1} << 32);
  auto b = start(600);
  b->recover(*store, nullptr, true);
  auto alice = user(*b, "alice");
  EXPECT_EQ(alice.current, state::active);
  EXPECT_EQ(alice.seq, uint64_t{1} << 32);
  EXPECT_EQ(user(*b, "carol").seq, 0u); // no record: nothing was published
  b->flush();
  // A second crash moves on to the generation after.
  auto c = start(700);
  c->recover(*store, nullptr, true);
  EXPECT_EQ(user(*c, "alice").seq, uint64_t{2} << 32);
}

// Verifies what a node with peers recovers is held (a newer copy may live
// elsewhere): a session tells its user nothing and a user publishes nothing
// until the cluster releases them; a session decays on its own clock
// meanwhile, and its user learns of it on release; a signal of its own
// releases a session too. (A restarted node's stale copies told the users on
// other nodes `away` for sessions that had resumed there.)
TEST_F(RecoveryTest, HeldSessionsTellTheirUserNothingUntilReleased) {
  auto sc = play_first_node();
  auto b = start(600);
  auto placement = std::make_shared<presence::testing::fake_placement>(b->sys());
  b->node().router().set_placement(placement); // a node of a cluster
  auto& transitions = b->node().metrics().user_transitions;
  b->recover(*store, nullptr, false, true);
  auto& r = b->node().router();
  auto tab = r.session(sc.alice_tab.session_id);
  ASSERT_TRUE(tab);
  auto before = transitions.load();
  b->walk_to(1000 + 50); // the tab: active until 1000, idle from then
  EXPECT_EQ(b->ask<session_view>(tab, caf::get_atom::value)->current, state::idle);
  // A signal of its own releases bob's session.
  auto reply = b->ask<signal_reply>(r.session(sc.bob.session_id), signal_atom::value,
                                    signal_kind::background);
  ASSERT_TRUE(reply);
  ASSERT_NE(reply->current, state::active);
  EXPECT_EQ(transitions.load(), before) << "a held user published";
  // The cluster releases the rest (membership.cpp, release_recovered): the
  // three sessions (bob's again, which changes nothing) and both users.
  auto held = r.release_recovered();
  EXPECT_EQ(held.size(), 5u);
  for (auto& a : held)
    caf::anon_send(a, release_atom::value);
  b->run();
  EXPECT_EQ(user(*b, "bob").current, reply->current);
  EXPECT_EQ(user(*b, "alice").current, state::idle);
  EXPECT_EQ(user(*b, "alice").seq, sc.alice_before.seq + 1);
  placement->stop();
}

// Verifies a user that a restarted node starts before it is a member of its
// cluster (a recovered intent looks its sides up while the node reads its
// disk) is held and gives way to the cluster's copy: it answers nothing
// until then, and what waited is answered by the cluster's copy. (Started
// from its dormant record, it was the live copy from then on: it told the
// watchers who subscribed once the view gave it this node `offline`, then
// `stale` for an abandoned session, while the user's live session signalled
// on another node; the cluster's copy was told it was the stale one.)
TEST_F(RecoveryTest, AUserStartedBeforeTheNodeJoinedGivesWayToTheClusters) {
  auto sc = play_first_node();
  auto b = start(600);
  auto placement = std::make_shared<presence::testing::fake_placement>(b->sys());
  placement->set_epoch(0); // not a member yet
  b->node().router().set_placement(placement);
  auto& transitions = b->node().metrics().user_transitions;
  b->recover(*store, nullptr, false, true);
  auto& r = b->node().router();
  // carol (the intent's target) was never stored: the intent started her here.
  auto carol = r.find_local("user:carol");
  ASSERT_TRUE(carol);
  auto before = transitions.load();
  recorded seen;
  auto watcher = b->recorder(seen);
  caf::anon_send(carol, subscribe_atom::value, watcher);
  b->run();
  EXPECT_TRUE(seen.presence.empty());
  // The cluster's copy: carol is active on another node.
  user_transfer live;
  live.rec.user_id = "carol";
  live.rec.published = static_cast<uint8_t>(state::active);
  live.rec.seq = 7;
  live.rec.last_seen_at = test_node::t0 + 590;
  live.rec.last_active_at = test_node::t0 + 590;
  live.sessions.push_back(handoff_session{"s_live@other", "web", state::active,
                                          test_node::t0 + 590, test_node::t0 + 590, 500, {}});
  auto other = holder_of(*b, live);
  EXPECT_TRUE(r.take_over("user:carol", other, 5)) << "carol counted as the live copy";
  b->run();
  EXPECT_EQ(transitions.load(), before) << "the held copy published";
  for (auto& e : seen.presence)
    EXPECT_NE(e.current, state::offline) << "seq " << e.seq;
  auto v = user(*b, "carol");
  EXPECT_EQ(v.current, state::active);
  EXPECT_EQ(v.seq, 7u);
  caf::anon_send_exit(other, caf::exit_reason::user_shutdown);
  placement->stop();
}

// Verifies the cluster's copy of an entity that replaces this node's recovered
// one stays on disk: the recovered copy erases its record when it gives way,
// and the pulled copy writes its own. Both live on this node, so the erase
// must come first whatever order the two actors run in: run the other way,
// the erase replaced the pulled copy's record, the intent lived on in memory
// only, and the next full restart lost it (accepted intents read 404 on
// every node after a chaos run).
TEST_F(RecoveryTest, ACopyPulledOverARecoveredOneStaysOnDisk) {
  auto sc = play_first_node();
  auto b = start(600);
  auto placement = std::make_shared<presence::testing::fake_placement>(b->sys());
  b->node().router().set_placement(placement); // a node of a cluster
  b->recover(*store, nullptr, false, true);
  auto& r = b->node().router();
  // The cluster's copy: the intent was accepted on the node that held it.
  auto rec = accepted_intent(sc.intent_id);
  auto old_owner = holder_of(*b, intent_transfer{rec});
  ASSERT_TRUE(r.take_over("intent:" + sc.intent_id, old_owner, 5));
  b->run_lifo();
  EXPECT_EQ(intent(*b, sc.intent_id).status, intent_status::accepted);
  b->flush();
  EXPECT_EQ(records(storage::kind::intents), 1u) << "the pulled intent is not on disk";
  caf::anon_send_exit(old_owner, caf::exit_reason::user_shutdown);
  placement->stop();
  // And a restart finds it.
  b.reset();
  auto c = start(1000);
  c->recover(*store);
  EXPECT_EQ(intent(*c, sc.intent_id).status, intent_status::accepted);
}

// Verifies that once the cluster released what this node recovered (the hold
// after it joined), no recovered entity counts as a stale copy any more: a
// later hand-off hint for a user it has served since does not replace the
// live user with another node's copy. (Only sessions were released: a user
// recovered and served for minutes could still be dropped for an older copy.)
TEST_F(RecoveryTest, AfterTheReleaseNoRecoveredEntityIsReplaced) {
  auto sc = play_first_node();
  auto b = start(600);
  auto placement = std::make_shared<presence::testing::fake_placement>(b->sys());
  b->node().router().set_placement(placement);
  b->recover(*store, nullptr, false, true);
  auto& r = b->node().router();
  auto alice = r.user("alice");
  for (auto& s : r.release_recovered())
    caf::anon_send(s, release_atom::value);
  b->run();
  auto other = holder_of(*b, user_transfer{});
  EXPECT_FALSE(r.take_over("user:alice", other, 5));
  EXPECT_FALSE(r.take_over("room:lobby", other, 5));
  EXPECT_FALSE(r.take_over("intent:" + sc.intent_id, other, 5));
  b->run();
  EXPECT_EQ(r.user("alice"), alice);
  EXPECT_EQ(user(*b, "alice").sessions.size(), 2u);
  caf::anon_send_exit(other, caf::exit_reason::user_shutdown);
  placement->stop();
}

// Verifies a node that joined its cluster before it finished reading its
// disk keeps the copies the cluster handed it meanwhile: recovery starts no
// actor for a key that is taken already. (The recovered actor lost the race
// for the key but ran on, unregistered: a stale intent told its sides an old
// status and overwrote the live copy's record, and its timer kept it alive
// past the node's stop: "waiting for 17 actors (5 user, 12 intent)", exit 1.)
TEST_F(RecoveryTest, RecoveryStartsNothingForAKeyTheClusterHandedOverFirst) {
  auto sc = play_first_node();
  auto b = start(600);
  auto placement = std::make_shared<presence::testing::fake_placement>(b->sys());
  b->node().router().set_placement(placement);
  auto& r = b->node().router();
  // The cluster's copy of the intent (accepted meanwhile) and of alice,
  // handed over before recovery reached these keys.
  auto rec = accepted_intent(sc.intent_id);
  auto old_owner = holder_of(*b, intent_transfer{rec});
  ASSERT_TRUE(r.take_over("intent:" + sc.intent_id, old_owner, 5));
  auto alice = r.user("alice");
  b->run();
  auto pulled = r.intent(sc.intent_id);
  auto users_before = census::live(census::kind::user);
  auto intents_before = census::live(census::kind::intent);
  b->recover(*store, nullptr, false, true);
  EXPECT_EQ(r.user("alice"), alice);
  EXPECT_EQ(r.intent(sc.intent_id), pulled);
  EXPECT_EQ(census::live(census::kind::intent), intents_before) << "a stale intent runs";
  EXPECT_EQ(census::live(census::kind::user), users_before + 1); // bob
  EXPECT_EQ(intent(*b, sc.intent_id).status, intent_status::accepted);
  // Nothing of theirs counts as recovered: a hint does not replace them.
  EXPECT_FALSE(r.take_over("user:alice", old_owner, 5));
  b->flush();
  caf::anon_send_exit(old_owner, caf::exit_reason::user_shutdown);
  placement->stop();
  b.reset();
  // The record on disk is the live copy's.
  auto c = start(1000);
  c->recover(*store);
  EXPECT_EQ(intent(*c, sc.intent_id).status, intent_status::accepted);
}

// Verifies that after a full restart, when another node offers its own
// recovered copy of a key (older: it held the key once, earlier), this
// node's newer recovered copy is kept: the fresher of the two wins, not the
// one that came from elsewhere. (The other node's older session record,
// without the room its client had joined since, replaced the owner's own:
// members missing from their rooms after a full restart.)
TEST_F(RecoveryTest, TheFresherOfTwoRecoveredCopiesWins) {
  auto sc = play_first_node();
  auto b = start(600);
  auto placement = std::make_shared<presence::testing::fake_placement>(b->sys());
  b->node().router().set_placement(placement);
  b->recover(*store, nullptr, false, true);
  auto& r = b->node().router();
  // Another node's copy of alice's tab, from before it joined the lobby.
  storage::session_record older;
  older.session_id = sc.alice_tab.session_id;
  older.user_id = "alice";
  older.device = "web";
  older.last_signal_at = test_node::t0 - 5000;
  older.last_active_at = test_node::t0 - 5000;
  older.heartbeat_ms = 500;
  auto other = holder_of(*b, session_transfer{older});
  ASSERT_TRUE(r.take_over("session:" + sc.alice_tab.session_id, other, 5));
  b->run();
  auto tab = r.session(sc.alice_tab.session_id);
  ASSERT_TRUE(tab);
  auto v = b->ask<session_view>(tab, caf::get_atom::value);
  ASSERT_TRUE(v) << render(v.error());
  EXPECT_EQ(v->last_signal_at, test_node::t0);
  EXPECT_EQ(v->rooms, (std::vector<std::string>{"lobby"}));
  // A fresher copy from elsewhere still wins over this node's.
  storage::session_record newer = older;
  newer.session_id = sc.bob.session_id;
  newer.user_id = "bob";
  newer.last_signal_at = test_node::t0 + 400;
  newer.last_active_at = test_node::t0 + 400;
  auto other2 = holder_of(*b, session_transfer{newer});
  ASSERT_TRUE(r.take_over("session:" + sc.bob.session_id, other2, 5));
  b->run();
  auto bv = b->ask<session_view>(r.session(sc.bob.session_id), caf::get_atom::value);
  ASSERT_TRUE(bv);
  EXPECT_EQ(bv->last_signal_at, test_node::t0 + 400);
  EXPECT_TRUE(bv->rooms.empty());
  for (auto& h : {other, other2})
    caf::anon_send_exit(h, caf::exit_reason::user_shutdown);
  placement->stop();
}

// Verifies a session pulled from another node brings its rooms along: it
// tells its user of itself and of each of its rooms, so a user copy that does
// not know the membership (its own copy was dropped as stale, or it started
// afresh) joins the room again. (It told its user of itself only: members
// missing from their rooms after a full restart.)
TEST_F(RecoveryTest, APulledSessionRejoinsItsRooms) {
  auto b = start(0);
  auto& r = b->node().router();
  storage::session_record rec;
  rec.session_id = "s_pulled";
  rec.user_id = "alice";
  rec.device = "web";
  rec.last_signal_at = test_node::t0;
  rec.last_active_at = test_node::t0;
  rec.declared = static_cast<uint8_t>(signal_kind::active);
  rec.ever_active = true;
  rec.heartbeat_ms = 500;
  rec.rooms.emplace_back("lobby", true);
  auto old_owner = holder_of(*b, session_transfer{rec});
  ASSERT_TRUE(r.take_over("session:s_pulled", old_owner, 5));
  b->run();
  ASSERT_TRUE(r.session("s_pulled"));
  auto lobby = room(*b, "lobby");
  ASSERT_EQ(lobby.members.size(), 1u) << "alice is not back in the lobby";
  EXPECT_EQ(lobby.members[0].user_id, "alice");
  caf::anon_send_exit(old_owner, caf::exit_reason::user_shutdown);
}

// Verifies that time spent down counts: after a downtime past stale_after_ms the
// sessions come back stale (never active), the user is stale with seq + 1, and
// the room counts them stale; a signal brings a session back to active.
TEST_F(RecoveryTest, LongDowntimeRestoresStale) {
  auto sc = play_first_node();
  auto b = start(6000); // stale at 5000, offline at 8000
  auto report = b->recover(*store);
  EXPECT_EQ(report.sessions, 3u);
  auto& r = b->node().router();
  auto tab = r.session(sc.alice_tab.session_id);
  ASSERT_TRUE(tab);
  EXPECT_EQ(b->ask<session_view>(tab, caf::get_atom::value)->current, state::stale);
  auto alice = user(*b, "alice");
  EXPECT_EQ(alice.current, state::stale);
  EXPECT_EQ(alice.seq, sc.alice_before.seq + 1);
  auto lobby = room(*b, "lobby");
  EXPECT_EQ(lobby.counts[static_cast<size_t>(state::stale)], 2);
  EXPECT_EQ(lobby.counts[static_cast<size_t>(state::active)], 0);
  auto reply = b->ask<signal_reply>(tab, signal_atom::value, signal_kind::active);
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->current, state::active);
  EXPECT_EQ(user(*b, "alice").current, state::active);
  // Still a stale session's timer: offline at 8000 unless it signals.
  b->walk_to(8000 + 50);
  EXPECT_FALSE(r.session(sc.bob.session_id));
}

// Verifies that after a downtime past offline_after_ms the sessions are gone
// (their records deleted), the users are offline with their last_active_at kept
// and seq + 1, and the room is empty; a new session of the user starts from the
// kept record.
TEST_F(RecoveryTest, DowntimePastOfflineDropsSessions) {
  auto sc = play_first_node();
  auto b = start(9000);
  auto report = b->recover(*store);
  EXPECT_EQ(report.sessions, 0u);
  EXPECT_EQ(report.sessions_dropped, 3u);
  EXPECT_EQ(report.users_dormant, 2u);
  b->flush();
  EXPECT_EQ(records(storage::kind::sessions), 0u);
  auto& r = b->node().router();
  EXPECT_FALSE(r.session(sc.alice_tab.session_id));
  auto alice = user(*b, "alice");
  EXPECT_EQ(alice.current, state::offline);
  EXPECT_EQ(alice.last_active_at, test_node::t0);
  EXPECT_EQ(alice.seq, sc.alice_before.seq + 1);
  EXPECT_EQ(alice.since, test_node::t0 + 8000); // when the last session expired
  auto lobby = room(*b, "lobby");
  EXPECT_TRUE(lobby.members.empty());
  EXPECT_EQ(lobby.phase, room_phase::empty);
  EXPECT_TRUE(lobby.media_attached);
  // The pending intent outlived them (ttl 60 s) and still waits.
  EXPECT_EQ(intent(*b, sc.intent_id).status, intent_status::pending);
  b->open("alice");
  auto back = user(*b, "alice");
  EXPECT_EQ(back.current, state::active);
  EXPECT_EQ(back.seq, sc.alice_before.seq + 2);
}

// Verifies intents across a restart: one whose ttl passed while down expires at
// once; a finished one is readable until its retention ends and then deleted;
// one past its retention is not restored.
TEST_F(RecoveryTest, IntentsExpireAndAreForgottenOnTime) {
  std::string short_id, finished_id;
  {
    auto a = start(0);
    auto& r = a->node().router();
    short_id = r.create_intent({"alice", "bob", "", "call", "", 1000})->first.intent_id;
    auto finished = r.create_intent({"alice", "carol", "", "call", "", 60000});
    finished_id = finished->first.intent_id;
    a->run();
    ASSERT_TRUE(a->ask<intent_view>(finished->second, cancel_atom::value,
                                    std::string{"alice"}));
    a->flush();
  }
  {
    auto b = start(2000);
    b->recover(*store);
    b->advance(5);
    EXPECT_EQ(intent(*b, short_id).status, intent_status::expired);
    EXPECT_EQ(intent(*b, finished_id).status, intent_status::cancelled);
    b->flush();
  }
  {
    // Past the 5-minute retention of both.
    auto c = start(2000 + finished_intent_retention_ms + 1000);
    auto report = c->recover(*store);
    EXPECT_EQ(report.intents, 0u);
    EXPECT_EQ(report.intents_dropped, 2u);
    c->flush();
    EXPECT_EQ(records(storage::kind::intents), 0u);
  }
}

// Verifies that an unreadable record (corrupt bytes, an unknown version) is
// skipped, counted in the metrics and logged with its key, and that the others
// still come back.
TEST_F(RecoveryTest, UnreadableRecordsAreSkipped) {
  auto sc = play_first_node();
  ASSERT_FALSE(store->write({{storage::kind::sessions, "s_junk", std::string{"\x01\xc1"}},
                             {storage::kind::users, "future", std::string{"\x63\x80"}}}));
  auto b = start(600);
  std::vector<std::string> lines;
  auto report = b->recover(*store, &lines);
  EXPECT_EQ(report.skipped, 2u);
  EXPECT_EQ(report.sessions, 3u);
  EXPECT_EQ(b->node().metrics().records_skipped.load(), 2u);
  std::string all;
  for (auto& l : lines)
    all += l + "\n";
  EXPECT_NE(all.find("s_junk"), std::string::npos) << all;
  EXPECT_NE(all.find("unknown record version 99"), std::string::npos) << all;
}

// Verifies that signals are snapshotted at most once per flush interval (a burst
// costs one record write), that a change of the declared signal is written at
// once, and that a clean stop writes the clocks of the last signals.
TEST_F(RecoveryTest, SignalsAreSnapshottedOncePerIntervalAndAtStop) {
  cfg.storage.flush_interval_ms = 100;
  std::string sid;
  {
    auto a = start(0);
    auto s = a->open("alice");
    sid = s.session_id;
    auto h = a->node().router().session(sid);
    auto before = a->writer()->stats().changes.load();
    for (int i = 0; i < 5; ++i) {
      a->advance(10);
      ASSERT_TRUE(a->ask<signal_reply>(h, signal_atom::value, signal_kind::active));
    }
    // Within one interval of the snapshot at open: nothing handed in.
    EXPECT_EQ(a->writer()->stats().changes.load(), before);
    ASSERT_TRUE(a->ask<signal_reply>(h, signal_atom::value, signal_kind::background));
    EXPECT_EQ(a->writer()->stats().changes.load(), before + 2); // session, user
    a->advance(10);
    ASSERT_TRUE(a->ask<signal_reply>(h, signal_atom::value, signal_kind::background));
  } // stops: the last signal (at +60) is written
  auto bytes = store->get(storage::kind::sessions, sid);
  ASSERT_TRUE(bytes);
  auto rec = storage::decode_record(storage::kind::sessions, *bytes, nullptr);
  ASSERT_TRUE(rec);
  auto& sr = std::get<storage::session_record>(*rec);
  EXPECT_EQ(sr.last_signal_at, test_node::t0 + 60);
  EXPECT_EQ(sr.declared, static_cast<uint8_t>(signal_kind::background));
}

// Verifies that an explicit leave deletes the session's record, that timeline
// samples beyond rooms.timeline_max_samples are deleted as they roll off, and that
// recovery trims a longer stored timeline to the limit.
TEST_F(RecoveryTest, NothingGrowsWithoutBound) {
  cfg.rooms.timeline_max_samples = 3;
  {
    auto a = start(0);
    auto s = a->open("alice");
    auto& r = a->node().router();
    ASSERT_TRUE(a->ask<room_view>(r.session(s.session_id), join_atom::value,
                                  std::string{"lobby"}, true));
    a->walk_to(5500, 100); // samples at 0, 1000, ..., 5000: 6 taken, 3 kept
    a->flush();
    EXPECT_EQ(records(storage::kind::timeline), 3u);
    EXPECT_FALSE(a->tell(r.session(s.session_id), leave_atom::value));
    a->flush();
    EXPECT_EQ(records(storage::kind::sessions), 0u);
  }
  cfg.rooms.timeline_max_samples = 2;
  auto b = start(6000);
  auto report = b->recover(*store);
  EXPECT_EQ(report.timeline_samples, 2u);
  EXPECT_EQ(report.timeline_dropped, 1u); // 3 stored (the last when it emptied)
  b->flush();
  EXPECT_EQ(records(storage::kind::timeline), 2u);
  auto tl = b->ask<std::vector<timeline_sample>>(b->node().router().room("lobby"),
                                                 timeline_atom::value, int64_t{0});
  ASSERT_TRUE(tl);
  EXPECT_EQ(tl->size(), 2u);
}

// Verifies that a churn of short sessions leaves no session records behind:
// only one record per user (its last_active_at and seq), however many sessions
// came and went, whether they left or expired.
TEST_F(RecoveryTest, ChurnLeavesOneRecordPerUser) {
  auto a = start(0);
  auto& r = a->node().router();
  for (int wave = 0; wave < 10; ++wave) {
    std::vector<opened_session> opened;
    for (int i = 0; i < 50; ++i)
      opened.push_back(a->open("user-" + std::to_string(i % 20)));
    for (auto& s : opened)
      ASSERT_TRUE(a->ask<signal_reply>(r.session(s.session_id), signal_atom::value,
                                       signal_kind::background));
    if (wave % 2 == 0) {
      for (auto& s : opened)
        EXPECT_FALSE(a->tell(r.session(s.session_id), leave_atom::value));
    } else {
      a->walk_to(a->now() + 8000 + 100, 500); // expire instead
    }
    a->flush();
    EXPECT_EQ(records(storage::kind::sessions), 0u) << "wave " << wave;
  }
  EXPECT_EQ(records(storage::kind::users), 20u);
  EXPECT_EQ(records(storage::kind::intents), 0u);
}

namespace {

// A store whose scans of one kind fail halfway (a corrupt or unreadable column
// family), for the rest it is the store it wraps.
class failing_scan_store : public storage::store {
public:
  failing_scan_store(storage::store& inner, storage::kind broken)
    : inner_(inner), broken_(broken) {}
  storage::status write(const std::vector<storage::mutation>& batch) override {
    return inner_.write(batch);
  }
  storage::status
  scan(storage::kind k,
       const std::function<void(std::string_view, std::string_view)>& f) override {
    if (k == broken_)
      return std::string{"IO error: injected scan failure"};
    return inner_.scan(k, f);
  }
  std::optional<std::string> get(storage::kind k, std::string_view key) override {
    return inner_.get(k, key);
  }
  uint64_t size_bytes() override { return inner_.size_bytes(); }

private:
  storage::store& inner_;
  storage::kind broken_;
};

} // namespace

// Verifies a failed scan stops recovery (and is counted): nothing is restored and no user is
// rewritten (before, the users' scan failing made every user with a session
// come back with seq 0 and overwrite its record).
TEST_F(RecoveryTest, FailedScanRestoresAndRewritesNothing) {
  uint64_t seq = 0;
  {
    auto n = start(0);
    auto s = n->open("alice");
    n->advance(100);
    seq = user(*n, "alice").seq;
    ASSERT_GT(seq, 0u);
    n->flush();
  }
  auto stored = store->get(storage::kind::users, "alice");
  ASSERT_TRUE(stored);
  failing_scan_store broken{*store, storage::kind::users};
  auto n = start(500);
  std::vector<std::string> lines;
  auto report = n->recover(broken, &lines);
  EXPECT_NE(report.failed.find("injected scan failure"), std::string::npos) << report.failed;
  EXPECT_EQ(n->node().metrics().storage_read_errors.load(), 1u)
    << "presence_storage_read_errors_total counts the failed scan";
  EXPECT_EQ(report.sessions, 0u);
  EXPECT_EQ(n->node().router().size(), 0u);
  n->flush();
  EXPECT_EQ(store->get(storage::kind::users, "alice"), stored) << "the record is untouched";
}
