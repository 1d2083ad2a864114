#include "actors/ids.hpp"

#include <openssl/rand.h>
#include <openssl/sha.h>

#include <array>
#include <stdexcept>
#include <vector>

namespace presence::actors {

namespace {

constexpr char hex_digits[] = "0123456789abcdef";

std::string to_hex(const unsigned char* p, size_t n) {
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    out += hex_digits[p[i] >> 4];
    out += hex_digits[p[i] & 0xf];
  }
  return out;
}

} // namespace

bool valid_id(std::string_view id) {
  if (id.empty() || id.size() > max_id_bytes)
    return false;
  for (unsigned char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == ':'
              || c == '@' || c == '-';
    if (!ok)
      return false;
  }
  return true;
}

std::string random_id(std::string_view prefix, size_t random_bytes) {
  std::vector<unsigned char> buf(random_bytes);
  if (RAND_bytes(buf.data(), static_cast<int>(buf.size())) != 1)
    throw std::runtime_error("RAND_bytes failed"); // unreachable on Linux
  std::string out{prefix};
  out += to_hex(buf.data(), buf.size());
  return out;
}

std::string token_digest(std::string_view s) {
  std::array<unsigned char, SHA256_DIGEST_LENGTH> md{};
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), md.data());
  return to_hex(md.data(), md.size());
}

} // namespace presence::actors
