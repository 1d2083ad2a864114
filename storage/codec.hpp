// The versioned record codec: every stored value is one version byte followed by
// the record as MessagePack (nlohmann/json). A record of an unknown version or
// whose bytes do not decode is reported, never thrown: recovery logs it, counts
// it and skips it. Pure and thread-safe.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace presence::storage {

/// The version this build writes.
inline constexpr uint8_t record_version = 1;

/// Encodes a record (a JSON object of the entity's durable fields).
std::string encode(const nlohmann::json& record);

/// The body of a stored value after its version byte, or nothing (saying why)
/// when the value is empty or of another version than this build writes.
std::optional<std::string_view> versioned_body(std::string_view bytes, std::string* why);

/// Decodes a record; on failure returns nothing and says why.
std::optional<nlohmann::json> decode(std::string_view bytes, std::string* why);

} // namespace presence::storage
