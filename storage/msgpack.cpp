#include "storage/msgpack.hpp"

#include <cstring>

namespace presence::storage::msgpack {

void writer::be(uint64_t v, int bytes) {
  for (int shift = (bytes - 1) * 8; shift >= 0; shift -= 8)
    out_.push_back(static_cast<char>((v >> shift) & 0xff));
}

void writer::header(uint32_t n, uint8_t fix, uint32_t fix_limit, uint8_t wide16) {
  if (n < fix_limit)
    out_.push_back(static_cast<char>(fix | n));
  else if (n <= 0xffff)
    tagged(wide16, n, 2);
  else
    tagged(static_cast<uint8_t>(wide16 + 1), n, 4);
}

void writer::tagged(uint8_t tag, uint64_t v, int bytes) {
  out_.push_back(static_cast<char>(tag));
  be(v, bytes);
}

void writer::sized(size_t n, uint8_t tag8, uint8_t tag16, uint8_t tag32) {
  if (n <= 0xff)
    tagged(tag8, n, 1);
  else if (n <= 0xffff)
    tagged(tag16, n, 2);
  else
    tagged(tag32, n, 4);
}

void writer::str(std::string_view s) {
  if (s.size() < 32)
    out_.push_back(static_cast<char>(0xa0 | s.size()));
  else
    sized(s.size(), 0xd9, 0xda, 0xdb);
  out_.append(s);
}

void writer::bin(std::string_view s) {
  sized(s.size(), 0xc4, 0xc5, 0xc6);
  out_.append(s);
}

void writer::uinteger(uint64_t v) {
  if (v <= 0x7f)
    out_.push_back(static_cast<char>(v));
  else if (v <= 0xffffffffULL)
    sized(v, 0xcc, 0xcd, 0xce);
  else
    tagged(0xcf, v, 8);
}

void writer::integer(int64_t v) {
  if (v >= 0)
    return uinteger(static_cast<uint64_t>(v));
  if (v >= -32)
    out_.push_back(static_cast<char>(static_cast<int8_t>(v)));
  else if (v >= INT8_MIN)
    tagged(0xd0, static_cast<uint8_t>(v), 1);
  else if (v >= INT16_MIN)
    tagged(0xd1, static_cast<uint16_t>(v), 2);
  else if (v >= INT32_MIN)
    tagged(0xd2, static_cast<uint32_t>(v), 4);
  else
    tagged(0xd3, static_cast<uint64_t>(v), 8);
}

void writer::real(double v) {
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof bits);
  out_.push_back(static_cast<char>(0xcb));
  be(bits, 8);
}

bool reader::take(size_t n, const uint8_t*& at) {
  if (static_cast<size_t>(end_ - p_) < n) {
    truncated_ = true;
    return false;
  }
  at = p_;
  p_ += n;
  return true;
}

bool reader::be(int bytes, uint64_t& v) {
  const uint8_t* at = nullptr;
  if (!take(static_cast<size_t>(bytes), at))
    return false;
  v = 0;
  for (int i = 0; i < bytes; ++i)
    v = (v << 8) | at[i];
  return true;
}

bool reader::length(uint8_t fix_mask, uint8_t fix_tag, uint8_t fix_bits, uint8_t b8,
                    uint8_t b16, uint8_t b32, uint32_t& n) {
  if (p_ >= end_) {
    truncated_ = true;
    return false;
  }
  auto t = *p_;
  uint64_t v = 0;
  if ((t & fix_mask) == fix_tag) {
    ++p_;
    n = t & fix_bits;
    return true;
  }
  int bytes = t == b8 && b8 != 0 ? 1 : t == b16 ? 2 : t == b32 ? 4 : 0;
  if (bytes == 0)
    return false;
  ++p_;
  if (!be(bytes, v))
    return false;
  n = static_cast<uint32_t>(v);
  return true;
}

bool reader::map(uint32_t& n) {
  return length(0xf0, 0x80, 0x0f, 0, 0xde, 0xdf, n);
}

bool reader::array(uint32_t& n) {
  return length(0xf0, 0x90, 0x0f, 0, 0xdc, 0xdd, n);
}

bool reader::view(uint32_t n, std::string_view& s) {
  const uint8_t* at = nullptr;
  if (!take(n, at))
    return false;
  s = std::string_view{reinterpret_cast<const char*>(at), n};
  return true;
}

bool reader::str(std::string_view& s) {
  uint32_t n = 0;
  return length(0xe0, 0xa0, 0x1f, 0xd9, 0xda, 0xdb, n) && view(n, s);
}

bool reader::bin(std::string_view& s) {
  uint32_t n = 0;
  return length(0x00, 0xff, 0x00, 0xc4, 0xc5, 0xc6, n) && view(n, s); // no fix form
}

bool reader::boolean(bool& b) {
  if (p_ >= end_) {
    truncated_ = true;
    return false;
  }
  if (*p_ != 0xc2 && *p_ != 0xc3)
    return false;
  b = *p_++ == 0xc3;
  return true;
}

bool reader::uinteger(uint64_t& v) {
  int64_t s = 0;
  if (p_ < end_ && *p_ == 0xcf) {
    ++p_;
    return be(8, v);
  }
  if (!integer(s) || s < 0)
    return false;
  v = static_cast<uint64_t>(s);
  return true;
}

bool reader::integer(int64_t& v) {
  if (p_ >= end_) {
    truncated_ = true;
    return false;
  }
  auto t = *p_;
  uint64_t u = 0;
  if (t <= 0x7f) {
    ++p_;
    v = t;
    return true;
  }
  if (t >= 0xe0) {
    ++p_;
    v = static_cast<int8_t>(t);
    return true;
  }
  switch (t) {
    case 0xcc: ++p_; if (!be(1, u)) return false; v = static_cast<int64_t>(u); return true;
    case 0xcd: ++p_; if (!be(2, u)) return false; v = static_cast<int64_t>(u); return true;
    case 0xce: ++p_; if (!be(4, u)) return false; v = static_cast<int64_t>(u); return true;
    case 0xcf:
      ++p_;
      if (!be(8, u))
        return false;
      if (u > static_cast<uint64_t>(INT64_MAX))
        return false;
      v = static_cast<int64_t>(u);
      return true;
    case 0xd0: ++p_; if (!be(1, u)) return false; v = static_cast<int8_t>(u); return true;
    case 0xd1: ++p_; if (!be(2, u)) return false; v = static_cast<int16_t>(u); return true;
    case 0xd2: ++p_; if (!be(4, u)) return false; v = static_cast<int32_t>(u); return true;
    case 0xd3: ++p_; if (!be(8, u)) return false; v = static_cast<int64_t>(u); return true;
    default:
      return false;
  }
}

bool reader::real(double& v) {
  if (p_ >= end_) {
    truncated_ = true;
    return false;
  }
  uint64_t u = 0;
  if (*p_ == 0xcb) {
    ++p_;
    if (!be(8, u))
      return false;
    std::memcpy(&v, &u, sizeof v);
    return true;
  }
  if (*p_ == 0xca) {
    ++p_;
    if (!be(4, u))
      return false;
    auto bits = static_cast<uint32_t>(u);
    float f = 0;
    std::memcpy(&f, &bits, sizeof f);
    v = f;
    return true;
  }
  int64_t i = 0;
  if (!integer(i))
    return false;
  v = static_cast<double>(i);
  return true;
}

bool reader::skip() {
  auto t = peek();
  if (t < 0) {
    truncated_ = true;
    return false;
  }
  std::string_view s;
  int64_t i = 0;
  double d = 0;
  bool b = false;
  uint32_t n = 0;
  if ((t & 0xf0) == 0x80 || t == 0xde || t == 0xdf) {
    if (!map(n))
      return false;
    for (uint32_t k = 0; k < 2 * n; ++k)
      if (!skip())
        return false;
    return true;
  }
  if ((t & 0xf0) == 0x90 || t == 0xdc || t == 0xdd) {
    if (!array(n))
      return false;
    for (uint32_t k = 0; k < n; ++k)
      if (!skip())
        return false;
    return true;
  }
  if ((t & 0xe0) == 0xa0 || t == 0xd9 || t == 0xda || t == 0xdb)
    return str(s);
  if (t == 0xc4 || t == 0xc5 || t == 0xc6)
    return bin(s);
  if (t == 0xc2 || t == 0xc3)
    return boolean(b);
  if (t == 0xca || t == 0xcb)
    return real(d);
  if (t == 0xc0) { // nil
    ++p_;
    return true;
  }
  return integer(i);
}

} // namespace presence::storage::msgpack
