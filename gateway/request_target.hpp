// Decoding of an HTTP request target ("/v1/rooms/r?limit=5&after=x") into a
// percent-decoded path and query parameters, and the route label of a request
// for metrics. Pure; total on any input.
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

/// The route label of a request, taken from the gateway's fixed route table so
/// that the label set stays bounded whatever clients send: "GET
/// /v1/users/{id}/presence" for a path of the table (ids become {id}), the method
/// "OTHER" for a method outside GET, POST and DELETE, and the path "unmatched"
/// for a path of no route.
std::string route_label(std::string_view method, std::string_view path);

} // namespace presence::gateway
