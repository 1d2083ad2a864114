#include "storage/codec.hpp"

namespace presence::storage {

std::string encode(const nlohmann::json& record) {
  std::string out;
  out.push_back(static_cast<char>(record_version));
  auto body = nlohmann::json::to_msgpack(record);
  out.append(body.begin(), body.end());
  return out;
}

std::optional<std::string_view> versioned_body(std::string_view bytes, std::string* why) {
  auto fail = [&](std::string msg) -> std::optional<std::string_view> {
    if (why != nullptr)
      *why = std::move(msg);
    return std::nullopt;
  };
  if (bytes.empty())
    return fail("empty record");
  auto version = static_cast<uint8_t>(bytes[0]);
  if (version != record_version)
    return fail("unknown record version " + std::to_string(version));
  return bytes.substr(1);
}

std::optional<nlohmann::json> decode(std::string_view bytes, std::string* why) {
  auto fail = [&](std::string msg) -> std::optional<nlohmann::json> {
    if (why != nullptr)
      *why = std::move(msg);
    return std::nullopt;
  };
  auto body = versioned_body(bytes, why);
  if (!body)
    return std::nullopt;
  auto j = nlohmann::json::from_msgpack(*body, true, false);
  if (j.is_discarded())
    return fail("corrupt record: its bytes do not decode");
  if (!j.is_object())
    return fail("corrupt record: not an object");
  return j;
}

} // namespace presence::storage
