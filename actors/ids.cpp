#include "actors/ids.hpp"

#include <openssl/rand.h>
#include <openssl/sha.h>

#include <algorithm>
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

namespace {

// Random bytes from OpenSSL's CSPRNG, drawn 4 KiB at a time per thread: each
// RAND_bytes call costs two getpid() system calls (fork detection).
void random_bytes(unsigned char* out, size_t n) {
  constexpr size_t pool_bytes = 4096;
  thread_local std::array<unsigned char, pool_bytes> pool;
  thread_local size_t used = pool_bytes;
  while (n > 0) {
    if (used == pool_bytes) {
      if (RAND_bytes(pool.data(), static_cast<int>(pool.size())) != 1)
        throw std::runtime_error("RAND_bytes failed"); // unreachable on Linux
      used = 0;
    }
    auto take = std::min(n, pool_bytes - used);
    std::copy_n(pool.data() + used, take, out);
    // Bytes handed out are wiped from the pool.
    std::fill_n(pool.data() + used, take, 0);
    used += take;
    out += take;
    n -= take;
  }
}

} // namespace

std::string random_id(std::string_view prefix, size_t n) {
  std::vector<unsigned char> buf(n);
  random_bytes(buf.data(), buf.size());
  std::string out{prefix};
  out += to_hex(buf.data(), buf.size());
  return out;
}

token_hash hash_token(std::string_view s) {
  token_hash md{};
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), md.data());
  return md;
}

} // namespace presence::actors
