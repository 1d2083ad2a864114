// Verifies the record codec (round trip, unknown version, corrupt bytes) and
// both stores (batches, deletes, scans in key order, kinds kept apart), and that
// RocksDB refuses a locked or unusable data directory with a message naming it.
#include "storage/codec.hpp"
#include "storage/store.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

using namespace presence::storage;
using nlohmann::json;

namespace {

std::string temp_dir() {
  char tmpl[] = "/tmp/presence-store-XXXXXX";
  return mkdtemp(tmpl);
}

struct dir_guard {
  std::string path = temp_dir();
  ~dir_guard() { std::filesystem::remove_all(path); }
};

void exercise(store& s) {
  ASSERT_FALSE(s.write({{kind::users, "u:b", encode({{"seq", 2}})},
                        {kind::users, "u:a", encode({{"seq", 1}})},
                        {kind::rooms, "r:1", encode({{"members", json::array()}})},
                        {kind::sessions, "s:1", encode({{"device", "web"}})}}));
  ASSERT_FALSE(s.write({{kind::sessions, "s:1", std::nullopt}}));
  std::vector<std::string> keys;
  ASSERT_FALSE(s.scan(kind::users, [&](std::string_view k, std::string_view v) {
    keys.emplace_back(k);
    std::string why;
    EXPECT_TRUE(decode(v, &why)) << why;
  }));
  EXPECT_EQ(keys, (std::vector<std::string>{"u:a", "u:b"}));
  EXPECT_FALSE(s.get(kind::sessions, "s:1")) << "deleted";
  EXPECT_FALSE(s.get(kind::users, "r:1")) << "kinds are apart";
  auto r = s.get(kind::rooms, "r:1");
  ASSERT_TRUE(r);
  EXPECT_TRUE((*decode(*r, nullptr))["members"].is_array());
}

} // namespace

TEST(CodecTest, RoundTrip) {
  json rec = {{"user_id", "alice"}, {"seq", 42}, {"last_active_at", 1700000000000},
              {"rooms", {"a", "b"}}, {"visible", true}, {"readiness", 0.75}};
  std::string why;
  auto back = decode(encode(rec), &why);
  ASSERT_TRUE(back) << why;
  EXPECT_EQ(*back, rec);
}

TEST(CodecTest, UnknownVersionAndCorruptBytes) {
  auto good = encode({{"a", 1}});
  struct row {
    std::string name;
    std::string bytes;
    std::string why;
  };
  auto newer = good;
  newer[0] = static_cast<char>(record_version + 1);
  std::vector<row> rows = {
    {"empty", "", "empty"},
    {"unknown version", newer, "unknown record version"},
    {"truncated", good.substr(0, good.size() - 1), "corrupt"},
    {"garbage", std::string{"\x01\xc1\xff\xfe", 4}, "corrupt"},
    {"not an object", std::string{"\x01"} + "\x2a", "not an object"},
  };
  for (auto& r : rows) {
    std::string why;
    EXPECT_FALSE(decode(r.bytes, &why)) << r.name;
    EXPECT_NE(why.find(r.why), std::string::npos) << r.name << ": " << why;
  }
}

TEST(StoreTest, MemoryStore) {
  auto s = make_memory_store();
  exercise(*s);
}

TEST(StoreTest, RocksDbStoreSurvivesReopen) {
  dir_guard d;
  std::optional<std::string> why;
  {
    auto s = open_rocksdb(d.path, &why);
    ASSERT_TRUE(s) << *why;
    exercise(*s);
  }
  auto s = open_rocksdb(d.path, &why);
  ASSERT_TRUE(s) << *why;
  EXPECT_TRUE(s->get(kind::users, "u:a"));
  EXPECT_FALSE(s->get(kind::sessions, "s:1"));
}

TEST(StoreTest, LockedDirectoryIsRefused) {
  dir_guard d;
  std::optional<std::string> why;
  auto first = open_rocksdb(d.path, &why);
  ASSERT_TRUE(first) << *why;
  auto second = open_rocksdb(d.path, &why);
  EXPECT_FALSE(second);
  ASSERT_TRUE(why);
  EXPECT_NE(why->find(d.path), std::string::npos) << *why;
  EXPECT_NE(why->find("in use"), std::string::npos) << *why;
}

TEST(StoreTest, UnusableDirectoryNamesThePath) {
  dir_guard d;
  auto file = d.path + "/plain-file";
  std::ofstream{file} << "x";
  std::optional<std::string> why;
  EXPECT_FALSE(open_rocksdb(file, &why));
  ASSERT_TRUE(why);
  EXPECT_NE(why->find(file), std::string::npos) << *why;
  EXPECT_FALSE(open_rocksdb(file + "/sub", &why));
  EXPECT_NE(why->find(file + "/sub"), std::string::npos) << *why;
}

// Verifies that deleted records do not stay on disk: after a churn of puts and
// deletes and a compaction, the RocksDB store is back to (nearly) nothing.
TEST(StoreTest, RocksDbChurnCompactsAway) {
  dir_guard dir;
  status why;
  auto s = open_rocksdb(dir.path, &why);
  ASSERT_TRUE(s) << *why;
  std::string value(100, 'v');
  for (int wave = 0; wave < 5; ++wave) {
    std::vector<mutation> puts, deletes;
    for (int i = 0; i < 10000; ++i) {
      auto key = "s_" + std::to_string(wave * 10000 + i);
      puts.push_back({kind::sessions, key, value});
      deletes.push_back({kind::sessions, key, std::nullopt});
    }
    ASSERT_FALSE(s->write(puts));
    ASSERT_FALSE(s->write(deletes));
  }
  auto before = s->size_bytes();
  s->compact();
  EXPECT_GT(before, 1'000'000u); // 50k records of 100 bytes were written
  EXPECT_LT(s->size_bytes(), 64u * 1024) << "before compaction: " << before;
  size_t left = 0;
  s->scan(kind::sessions, [&](std::string_view, std::string_view) { ++left; });
  EXPECT_EQ(left, 0u);
}
