// Decoding of an HTTP request target ("/v1/rooms/r?limit=5&after=x") into a
// percent-decoded path and query parameters. Pure; total on any input.
#pragma once

#include <map>
#include <string>
#include <string_view>

namespace presence::gateway {

/// Percent- and '+'-decoding; malformed escapes are kept as they are.
std::string url_decode(std::string_view s);

/// Splits "a/b?x=1&y=2" into path and decoded query parameters.
void split_target(std::string_view target, std::string& path,
                  std::map<std::string, std::string>& query);

} // namespace presence::gateway
