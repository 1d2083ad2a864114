// Fuzzes token verification: arbitrary bytes as a bearer token, and arbitrary
// claims signed with the right secret (so the claim checks are reached).
#include "gateway/auth.hpp"

#include <cstddef>
#include <cstdint>

using namespace presence::gateway;

namespace {

const authenticator& auth() {
  static const authenticator a = [] {
    presence::config::auth_section cfg;
    cfg.mode = "jwt";
    cfg.secret = "fuzzing-secret-0123456789";
    return authenticator{cfg};
  }();
  return a;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in{reinterpret_cast<const char*>(data), size};
  std::string why;
  auth().verify(in, 1'700'000'000, &why);
  auth().authenticate(in, in, in, in, 1'700'000'000, &why);
  // The same bytes as the claims of a correctly signed token.
  auto header = base64url_encode(R"({"alg":"HS256","typ":"JWT"})");
  auto body = header + "." + base64url_encode(in);
  auto token = auth().issue("x", role::user, 0, 1); // for its signature shape only
  auto sig_pos = token.rfind('.');
  auth().verify(body + token.substr(sig_pos), 1'700'000'000, &why);
  base64url_decode(in);
  return 0;
}
