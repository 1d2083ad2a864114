// Identifiers: validation of client-given ids (PROTOCOL.md: at most 128 bytes of
// [A-Za-z0-9_.:@-]) and random ids and tokens from OpenSSL's CSPRNG. Thread-safe.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>

namespace presence::actors {

/// Maximum length of any id, in bytes.
inline constexpr size_t max_id_bytes = 128;

/// True if `id` is non-empty, at most 128 bytes, and uses only [A-Za-z0-9_.:@-].
bool valid_id(std::string_view id);

/// `prefix` followed by `random_bytes` random bytes in lowercase hex.
std::string random_id(std::string_view prefix, size_t random_bytes);

/// SHA-256 of a token: what the server keeps instead of the token.
using token_hash = std::array<unsigned char, 32>;
token_hash hash_token(std::string_view s);

} // namespace presence::actors
