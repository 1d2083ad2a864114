#include "gateway/request_target.hpp"

namespace presence::gateway {

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

} // namespace

std::string url_decode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0
        && hex_value(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    } else if (s[i] == '+') {
      out += ' ';
    } else {
      out += s[i];
    }
  }
  return out;
}

void split_target(std::string_view target, std::string& path,
                  std::map<std::string, std::string>& query) {
  auto q = target.find('?');
  path = url_decode(target.substr(0, q));
  if (q == std::string_view::npos)
    return;
  auto rest = target.substr(q + 1);
  while (!rest.empty()) {
    auto amp = rest.find('&');
    auto pair = rest.substr(0, amp);
    auto eq = pair.find('=');
    if (!pair.empty())
      query[url_decode(pair.substr(0, eq))] =
        eq == std::string_view::npos ? std::string{} : url_decode(pair.substr(eq + 1));
    if (amp == std::string_view::npos)
      break;
    rest.remove_prefix(amp + 1);
  }
}

namespace {

/// Every path the gateway serves; "{id}" matches one path segment.
constexpr std::string_view route_table[] = {
  "/healthz",
  "/readyz",
  "/metrics",
  "/v1/ws",
  "/v1/guests",
  "/v1/sessions",
  "/v1/sessions/{id}",
  "/v1/sessions/{id}/signal",
  "/v1/sessions/{id}/identify",
  "/v1/sessions/{id}/leave",
  "/v1/users/{id}/presence",
  "/v1/users/{id}/intents",
  "/v1/users/{id}/intents/analytics",
  "/v1/presence/query",
  "/v1/rooms/{id}",
  "/v1/rooms/{id}/join",
  "/v1/rooms/{id}/leave",
  "/v1/rooms/{id}/media",
  "/v1/rooms/{id}/timeline",
  "/v1/rooms/{id}/analytics",
  "/v1/rooms/{id}/start_when",
  "/v1/intents",
  "/v1/intents/{id}",
  "/v1/intents/{id}/accept",
  "/v1/intents/{id}/decline",
  "/v1/intents/{id}/cancel",
  "/v1/cluster",
  "/v1/cluster/rebalance",
  "/v1/cluster/nodes/{id}/drain",
  "/demo",
  "/demo/",
  "/demo/{id}",
  "/demo/lib/{id}",
};

// True if `path` matches `pattern` segment by segment.
bool matches(std::string_view pattern, std::string_view path) {
  while (!pattern.empty() && !path.empty()) {
    if (pattern[0] != '/' || path[0] != '/')
      return false;
    pattern.remove_prefix(1);
    path.remove_prefix(1);
    auto pe = pattern.find('/');
    auto qe = path.find('/');
    auto p = pattern.substr(0, pe);
    auto q = path.substr(0, qe);
    if (p == "{id}" ? q.empty() : p != q)
      return false;
    pattern.remove_prefix(p.size());
    path.remove_prefix(q.size());
  }
  return pattern.empty() && path.empty();
}

} // namespace

std::string route_label(std::string_view method, std::string_view path) {
  std::string out{method == "GET" || method == "POST" || method == "DELETE" ? method
                                                                             : "OTHER"};
  out += ' ';
  for (auto pattern : route_table)
    if (matches(pattern, path))
      return out.append(pattern);
  return out.append("unmatched");
}

} // namespace presence::gateway
