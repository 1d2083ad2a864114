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
