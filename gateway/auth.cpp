#include "gateway/auth.hpp"

#include "actors/ids.hpp"

#include <nlohmann/json.hpp>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>

namespace presence::gateway {

namespace {

constexpr char b64url[] =
  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string hmac_sha256(std::string_view key, std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), md.data(),
       &len);
  return std::string(reinterpret_cast<const char*>(md.data()), len);
}

} // namespace

std::string_view to_string(role r) {
  switch (r) {
    case role::guest:
      return "guest";
    case role::admin:
      return "admin";
    default:
      return "user";
  }
}

std::optional<role> parse_role(std::string_view s) {
  if (s == "user")
    return role::user;
  if (s == "guest")
    return role::guest;
  if (s == "admin")
    return role::admin;
  return std::nullopt;
}

std::string base64url_encode(std::string_view in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  auto byte = [&](size_t k) { return static_cast<unsigned char>(in[k]); };
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (byte(i) << 16) | (byte(i + 1) << 8) | byte(i + 2);
    out += b64url[(v >> 18) & 63];
    out += b64url[(v >> 12) & 63];
    out += b64url[(v >> 6) & 63];
    out += b64url[v & 63];
  }
  if (i + 1 == in.size()) {
    uint32_t v = byte(i) << 16;
    out += b64url[(v >> 18) & 63];
    out += b64url[(v >> 12) & 63];
  } else if (i + 2 == in.size()) {
    uint32_t v = (byte(i) << 16) | (byte(i + 1) << 8);
    out += b64url[(v >> 18) & 63];
    out += b64url[(v >> 12) & 63];
    out += b64url[(v >> 6) & 63];
  }
  return out;
}

std::optional<std::string> base64url_decode(std::string_view in) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z')
      return c - 'A';
    if (c >= 'a' && c <= 'z')
      return c - 'a' + 26;
    if (c >= '0' && c <= '9')
      return c - '0' + 52;
    if (c == '-')
      return 62;
    if (c == '_')
      return 63;
    return -1;
  };
  if (in.size() % 4 == 1)
    return std::nullopt;
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    auto v = value(c);
    if (v < 0)
      return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

authenticator::authenticator(const config::auth_section& cfg)
  : secret_(cfg.secret), dev_(cfg.mode == "dev"), allow_guests_(cfg.allow_guests) {
  // A dev node without a secret still issues guest tokens: it signs them with a
  // random secret of its own, valid until it stops.
  if (secret_.empty() && dev_)
    secret_ = actors::random_id("", 32);
}

std::string authenticator::issue(const std::string& sub, role r, int64_t now_s,
                                 int64_t ttl_s) const {
  static const std::string header = base64url_encode(R"({"alg":"HS256","typ":"JWT"})");
  nlohmann::json claims = {{"sub", sub},
                           {"role", std::string{to_string(r)}},
                           {"iat", now_s},
                           {"exp", now_s + ttl_s}};
  auto body = header + "." + base64url_encode(claims.dump());
  return body + "." + base64url_encode(hmac_sha256(secret_, body));
}

std::optional<principal> authenticator::verify(std::string_view token, int64_t now_s,
                                               std::string* why) const {
  auto fail = [&](const char* msg) -> std::optional<principal> {
    if (why != nullptr)
      *why = msg;
    return std::nullopt;
  };
  if (secret_.empty())
    return fail("tokens are not accepted: no auth.secret is configured");
  auto d1 = token.find('.');
  auto d2 = d1 == std::string_view::npos ? d1 : token.find('.', d1 + 1);
  if (d2 == std::string_view::npos || token.find('.', d2 + 1) != std::string_view::npos)
    return fail("malformed token");
  auto signed_part = token.substr(0, d2);
  auto sig = base64url_decode(token.substr(d2 + 1));
  auto expected = hmac_sha256(secret_, signed_part);
  if (!sig || sig->size() != expected.size()
      || CRYPTO_memcmp(sig->data(), expected.data(), expected.size()) != 0)
    return fail("bad token signature");
  auto header = base64url_decode(token.substr(0, d1));
  auto payload = base64url_decode(token.substr(d1 + 1, d2 - d1 - 1));
  if (!header || !payload)
    return fail("malformed token");
  auto h = nlohmann::json::parse(*header, nullptr, false);
  auto p = nlohmann::json::parse(*payload, nullptr, false);
  if (!h.is_object() || !p.is_object())
    return fail("malformed token");
  if (h.value("alg", "") != "HS256")
    return fail("token algorithm must be HS256");
  if (!p.contains("exp") || !p["exp"].is_number_integer())
    return fail("token has no exp");
  if (p["exp"].get<int64_t>() <= now_s)
    return fail("token expired");
  if (!p.contains("sub") || !p["sub"].is_string()
      || !actors::valid_id(p["sub"].get<std::string>()))
    return fail("token sub is missing or not a valid id");
  auto r = parse_role(p.value("role", "user"));
  if (!r)
    return fail("token role must be user, guest or admin");
  return principal{p["sub"].get<std::string>(), *r};
}

std::optional<principal> authenticator::authenticate(std::string_view authorization,
                                                     std::string_view x_user,
                                                     std::string_view x_role,
                                                     std::string_view query_token,
                                                     int64_t now_s,
                                                     std::string* why) const {
  constexpr std::string_view bearer = "Bearer ";
  if (!authorization.empty()) {
    if (authorization.substr(0, bearer.size()) != bearer) {
      if (why != nullptr)
        *why = "Authorization must be 'Bearer <token>'";
      return std::nullopt;
    }
    return verify(authorization.substr(bearer.size()), now_s, why);
  }
  if (!query_token.empty())
    return verify(query_token, now_s, why);
  if (dev_ && !x_user.empty()) {
    if (!actors::valid_id(x_user)) {
      if (why != nullptr)
        *why = "X-User is not a valid id";
      return std::nullopt;
    }
    auto r = x_role.empty() ? std::optional<role>{role::user} : parse_role(x_role);
    if (!r) {
      if (why != nullptr)
        *why = "X-Role must be user, guest or admin";
      return std::nullopt;
    }
    return principal{std::string{x_user}, *r};
  }
  if (why != nullptr)
    *why = dev_ ? "send 'Authorization: Bearer <token>' or, in dev mode, 'X-User: <id>'"
                : "send 'Authorization: Bearer <token>'";
  return std::nullopt;
}

} // namespace presence::gateway
