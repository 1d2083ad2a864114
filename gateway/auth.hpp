// Authentication (PROTOCOL.md "Authentication"): JWT HS256 tokens signed with the
// cluster secret, claims `sub`, `role` (user, guest, admin) and `exp`; guest tokens;
// and the development mode that trusts an `X-User` header. Pure and thread-safe
// (no mutable state): every I/O thread may call it.
#pragma once

#include "config/settings.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace presence::gateway {

enum class role : uint8_t { user, guest, admin };

std::string_view to_string(role r);
std::optional<role> parse_role(std::string_view s);

/// Who is calling.
struct principal {
  std::string user_id;
  gateway::role role = role::user;
};

/// Why a request is not authenticated.
struct auth_failure {
  std::string message;
};

class authenticator {
public:
  explicit authenticator(const config::auth_section& cfg);

  /// A signed token for `sub` with `role`, expiring `ttl_s` after `now_s`.
  std::string issue(const std::string& sub, role r, int64_t now_s, int64_t ttl_s) const;

  /// Verifies a token: signature, algorithm, `exp` after `now_s`, a valid `sub`
  /// and a known `role`.
  std::optional<principal> verify(std::string_view token, int64_t now_s,
                                   std::string* why) const;

  /// Authenticates a request from its `Authorization` header value, its
  /// `X-User` and `X-Role` header values (dev mode only) and a `token` query
  /// parameter (WebSocket only; empty otherwise).
  std::optional<principal> authenticate(std::string_view authorization,
                                        std::string_view x_user,
                                        std::string_view x_role,
                                        std::string_view query_token, int64_t now_s,
                                        std::string* why) const;

  bool dev_mode() const { return dev_; }
  bool allow_guests() const { return allow_guests_; }

private:
  std::string secret_;
  bool dev_;
  bool allow_guests_;
};

/// Base64url without padding (RFC 7515).
std::string base64url_encode(std::string_view in);
std::optional<std::string> base64url_decode(std::string_view in);

} // namespace presence::gateway
