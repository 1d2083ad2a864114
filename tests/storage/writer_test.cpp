// Verifies the write-behind writer: changes are coalesced per key (the latest
// wins, a delete replaces a put), everything pending goes out as one batch, a
// backlog larger than a batch is split, stop() writes what is pending, the flush
// thread writes without being asked, and a failed write keeps its records for
// the next flush without overwriting newer changes.
#include "storage/records.hpp"
#include "storage/writer.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

using namespace presence::storage;

namespace {

user_record user(const std::string& id, uint64_t seq) {
  user_record r;
  r.user_id = id;
  r.seq = seq;
  return r;
}

std::optional<user_record> read_user(store& s, const std::string& id) {
  auto bytes = s.get(kind::users, id);
  if (!bytes)
    return std::nullopt;
  std::string why;
  auto r = decode_record(kind::users, *bytes, &why);
  EXPECT_TRUE(r) << why;
  return std::get<user_record>(*r);
}

size_t count(store& s, kind k) {
  size_t n = 0;
  s.scan(k, [&](std::string_view, std::string_view) { ++n; });
  return n;
}

} // namespace

TEST(WriterTest, CoalescesPerKeyIntoOneBatch) {
  auto s = make_memory_store();
  snapshot_writer w{*s, 100};
  for (uint64_t seq = 1; seq <= 5; ++seq)
    w.put(user("alice", seq));
  w.put(user("bob", 1));
  w.put(timeline_record{"lobby", 5, {}, 0, 0});
  EXPECT_EQ(w.pending(), 3u);
  EXPECT_FALSE(read_user(*s, "alice")); // nothing written before a flush
  EXPECT_EQ(w.flush(), 3u);
  EXPECT_EQ(w.stats().batches.load(), 1u);
  EXPECT_EQ(w.stats().changes.load(), 7u);
  EXPECT_EQ(read_user(*s, "alice")->seq, 5u);
  EXPECT_EQ(read_user(*s, "bob")->seq, 1u);
  EXPECT_EQ(count(*s, kind::timeline), 1u);
  EXPECT_EQ(w.pending(), 0u);
  EXPECT_EQ(w.flush(), 0u); // nothing pending: no empty batch
  EXPECT_EQ(w.stats().batches.load(), 1u);
}

TEST(WriterTest, DeleteReplacesPendingPutAndRemovesWrittenRecord) {
  auto s = make_memory_store();
  snapshot_writer w{*s, 100};
  w.put(user("alice", 1));
  w.flush();
  ASSERT_TRUE(read_user(*s, "alice"));
  w.put(user("alice", 2));
  w.erase(kind::users, "alice");
  EXPECT_EQ(w.pending(), 1u);
  w.flush();
  EXPECT_FALSE(read_user(*s, "alice"));
  // A put after a delete brings it back.
  w.erase(kind::users, "bob");
  w.put(user("bob", 3));
  w.flush();
  EXPECT_EQ(read_user(*s, "bob")->seq, 3u);
}

TEST(WriterTest, SplitsALargeBacklogIntoBoundedBatches) {
  auto s = make_memory_store();
  snapshot_writer w{*s, 100};
  auto n = snapshot_writer::max_batch_records * 2 + 7;
  for (size_t i = 0; i < n; ++i)
    w.put(user("u" + std::to_string(i), i));
  EXPECT_EQ(w.flush(), n);
  EXPECT_EQ(w.stats().batches.load(), 3u);
  EXPECT_EQ(count(*s, kind::users), n);
}

TEST(WriterTest, StopWritesEverythingPending) {
  auto s = make_memory_store();
  {
    snapshot_writer w{*s, 60000}; // the thread would not flush within the test
    w.start();
    for (int i = 0; i < 100; ++i)
      w.put(user("u" + std::to_string(i), 1));
    w.stop();
    EXPECT_EQ(w.pending(), 0u);
    EXPECT_EQ(count(*s, kind::users), 100u);
    w.put(user("late", 1)); // after stop, the destructor still writes it
  }
  EXPECT_TRUE(read_user(*s, "late"));
}

TEST(WriterTest, FlushThreadWritesWithinTheInterval) {
  auto s = make_memory_store();
  snapshot_writer w{*s, 5};
  w.start();
  w.put(user("alice", 1));
  // Poll with a deadline: the thread flushes on its own.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{10};
  while (!read_user(*s, "alice") && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds{1});
  EXPECT_TRUE(read_user(*s, "alice"));
  w.stop();
}

TEST(WriterTest, FailedWriteIsRetriedAndNewerChangesWin) {
  auto fail = std::make_shared<std::atomic<bool>>(true);
  auto s = make_memory_store(fail);
  std::vector<std::string> errors;
  snapshot_writer w{*s, 100, [&](const std::string& e) { errors.push_back(e); }};
  w.put(user("alice", 1));
  w.put(user("bob", 1));
  EXPECT_EQ(w.flush(), 0u);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("injected fault"), std::string::npos);
  EXPECT_EQ(w.stats().write_errors.load(), 1u);
  EXPECT_EQ(w.pending(), 2u); // kept
  w.put(user("alice", 2));    // newer than the failed one
  fail->store(false);
  EXPECT_EQ(w.flush(), 2u);
  EXPECT_EQ(read_user(*s, "alice")->seq, 2u);
  EXPECT_EQ(read_user(*s, "bob")->seq, 1u);
}
