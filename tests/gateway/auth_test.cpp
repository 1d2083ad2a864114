// Verifies tokens: round trip, expiry, forged signatures, other algorithms, bad
// claims; the dev-mode header; base64url.
#include "gateway/auth.hpp"

#include <gtest/gtest.h>

using namespace presence::gateway;

namespace {

constexpr int64_t now_s = 1'700'000'000;

authenticator make(const std::string& mode, const std::string& secret) {
  presence::config::auth_section cfg;
  cfg.mode = mode;
  cfg.secret = secret;
  return authenticator{cfg};
}

// The unsigned part of a token with arbitrary header and claims.
std::string unsigned_part(const std::string& header_json, const std::string& claims_json) {
  return base64url_encode(header_json) + "." + base64url_encode(claims_json);
}

} // namespace

TEST(AuthTest, RoundTrip) {
  auto a = make("jwt", "0123456789abcdef-secret");
  for (auto r : {role::user, role::guest, role::admin}) {
    auto t = a.issue("alice", r, now_s, 60);
    std::string why;
    auto p = a.verify(t, now_s + 59, &why);
    ASSERT_TRUE(p) << why;
    EXPECT_EQ(p->user_id, "alice");
    EXPECT_EQ(p->role, r);
  }
}

TEST(AuthTest, Refusals) {
  auto a = make("jwt", "0123456789abcdef-secret");
  auto other = make("jwt", "another-secret-of-length");
  auto good = a.issue("alice", role::user, now_s, 60);
  struct row {
    std::string name;
    std::string token;
    int64_t at;
    std::string why;
  };
  std::vector<row> rows = {
    {"expired", good, now_s + 60, "expired"},
    {"forged", other.issue("alice", role::admin, now_s, 60), now_s, "signature"},
    {"tampered claims",
     good.substr(0, good.find('.') + 1)
       + base64url_encode(R"({"sub":"mallory","role":"admin","exp":1900000000})")
       + good.substr(good.rfind('.')),
     now_s, "signature"},
    {"two parts", "a.b", now_s, "malformed"},
    {"four parts", good + ".x", now_s, "malformed"},
    {"empty", "", now_s, "malformed"},
    {"alg none", unsigned_part(R"({"alg":"none"})", R"({"sub":"a","exp":1900000000})") + ".",
     now_s, "signature"},
  };
  for (auto& r : rows) {
    std::string why;
    EXPECT_FALSE(a.verify(r.token, r.at, &why)) << r.name;
    EXPECT_NE(why.find(r.why), std::string::npos) << r.name << ": " << why;
  }
}

TEST(AuthTest, Authenticate) {
  auto jwt = make("jwt", "0123456789abcdef-secret");
  auto dev = make("dev", "");
  std::string why;
  EXPECT_FALSE(jwt.authenticate("", "alice", "", "", now_s, &why)) << "no X-User in jwt";
  EXPECT_FALSE(jwt.authenticate("Basic xyz", "", "", "", now_s, &why));
  auto t = jwt.issue("bob", role::user, now_s, 60);
  auto p = jwt.authenticate("Bearer " + t, "", "", "", now_s, &why);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->user_id, "bob");
  p = jwt.authenticate("", "", "", t, now_s, &why); // ?token= on WebSocket
  ASSERT_TRUE(p);
  p = dev.authenticate("", "carol", "admin", "", now_s, &why);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->role, role::admin);
  EXPECT_FALSE(dev.authenticate("", "bad id", "", "", now_s, &why));
  EXPECT_FALSE(dev.authenticate("", "carol", "root", "", now_s, &why));
  EXPECT_FALSE(dev.authenticate("", "", "", "", now_s, &why));
  // A dev node signs guest tokens with a secret of its own.
  auto g = dev.issue("guest:1", role::guest, now_s, 60);
  EXPECT_TRUE(dev.verify(g, now_s, &why)) << why;
}

TEST(AuthTest, Base64Url) {
  for (std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar", "\xff\xfe\x00"}) {
    auto d = base64url_decode(base64url_encode(s));
    ASSERT_TRUE(d);
    EXPECT_EQ(*d, s);
  }
  EXPECT_EQ(base64url_encode("\xfb\xff"), "-_8");
  EXPECT_FALSE(base64url_decode("a"));
  EXPECT_FALSE(base64url_decode("ab+c"));
  EXPECT_FALSE(base64url_decode("ab=="));
}
