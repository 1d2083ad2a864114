// A minimal MessagePack writer and a bounds-checked reader for the durable
// records (records.cpp): enough of the format for maps, arrays, strings, binary,
// integers, booleans and doubles. The writer emits the shortest encodings, as
// any MessagePack library does; the reader accepts every encoding of those
// types and reports the first problem instead of throwing. About ten times
// cheaper than building a JSON document for each record, which matters on the
// snapshot path and for recovering a million sessions. Pure; no shared state.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace presence::storage::msgpack {

class writer {
public:
  explicit writer(std::string& out) : out_(out) {}

  void map(uint32_t n) { header(n, 0x80, 16, 0xde); }
  void array(uint32_t n) { header(n, 0x90, 16, 0xdc); }
  void str(std::string_view s);
  void bin(std::string_view s);
  void boolean(bool b) { out_.push_back(static_cast<char>(b ? 0xc3 : 0xc2)); }
  void integer(int64_t v);
  void uinteger(uint64_t v);
  void real(double v);

  /// A key and its value, for maps.
  template <class F>
  void field(std::string_view key, F&& value) {
    str(key);
    value(*this);
  }

private:
  void header(uint32_t n, uint8_t fix, uint32_t fix_limit, uint8_t wide16);
  void be(uint64_t v, int bytes);
  // A type byte, then `v` big-endian in `bytes` bytes.
  void tagged(uint8_t tag, uint64_t v, int bytes);
  // `n` in the narrowest of 1, 2 or 4 bytes, after the matching type byte.
  void sized(size_t n, uint8_t tag8, uint8_t tag16, uint8_t tag32);

  std::string& out_;
};

class reader {
public:
  explicit reader(std::string_view bytes)
    : p_(reinterpret_cast<const uint8_t*>(bytes.data())), end_(p_ + bytes.size()) {}

  /// Each returns false on a type mismatch or truncation (see `fail()`).
  bool map(uint32_t& n);
  bool array(uint32_t& n);
  bool str(std::string_view& s);
  bool bin(std::string_view& s);
  bool boolean(bool& b);
  bool integer(int64_t& v);
  bool uinteger(uint64_t& v);
  bool real(double& v);

  /// Skips one value of any of the types above (unknown fields of a newer
  /// writer); false if it cannot.
  bool skip();

  /// The type byte of the next value, or -1 at the end.
  int peek() const { return p_ < end_ ? *p_ : -1; }

  bool at_end() const { return p_ == end_; }

  /// True once a read ran past the end (so the record is truncated).
  bool truncated() const { return truncated_; }

private:
  bool take(size_t n, const uint8_t*& at);
  // The next `n` bytes as a view into the input.
  bool view(uint32_t n, std::string_view& s);
  bool be(int bytes, uint64_t& v);
  bool length(uint8_t fix_mask, uint8_t fix_tag, uint8_t fix_bits, uint8_t b8, uint8_t b16,
              uint8_t b32, uint32_t& n);

  const uint8_t* p_;
  const uint8_t* end_;
  bool truncated_ = false;
};

} // namespace presence::storage::msgpack
