#include "gateway/metrics_text.hpp"
#include "gateway/server.hpp"

#include <gtest/gtest.h>

#include <string>

using presence::gateway::route_label;

namespace {

// Verifies every row of the route table, at each kind of boundary: ids become
// {id}, a path of no route is "unmatched", a method outside the table "OTHER".
TEST(RouteLabelTest, LabelsComeFromTheFixedRouteTable) {
  struct row {
    const char* method;
    const char* path;
    const char* label;
  };
  const row rows[] = {
    {"GET", "/healthz", "GET /healthz"},
    {"GET", "/readyz", "GET /readyz"},
    {"GET", "/metrics", "GET /metrics"},
    {"POST", "/v1/guests", "POST /v1/guests"},
    {"POST", "/v1/sessions", "POST /v1/sessions"},
    {"GET", "/v1/sessions/s_1", "GET /v1/sessions/{id}"},
    {"DELETE", "/v1/sessions/s_1", "DELETE /v1/sessions/{id}"},
    {"POST", "/v1/sessions/s_1/signal", "POST /v1/sessions/{id}/signal"},
    {"POST", "/v1/sessions/s_1/identify", "POST /v1/sessions/{id}/identify"},
    {"POST", "/v1/sessions/s_1/leave", "POST /v1/sessions/{id}/leave"},
    {"GET", "/v1/users/alice/presence", "GET /v1/users/{id}/presence"},
    {"GET", "/v1/users/alice/intents", "GET /v1/users/{id}/intents"},
    {"POST", "/v1/presence/query", "POST /v1/presence/query"},
    {"GET", "/v1/rooms/r1", "GET /v1/rooms/{id}"},
    {"POST", "/v1/rooms/r1/join", "POST /v1/rooms/{id}/join"},
    {"POST", "/v1/rooms/r1/leave", "POST /v1/rooms/{id}/leave"},
    {"POST", "/v1/rooms/r1/media", "POST /v1/rooms/{id}/media"},
    {"GET", "/v1/rooms/r1/timeline", "GET /v1/rooms/{id}/timeline"},
    {"POST", "/v1/intents", "POST /v1/intents"},
    {"GET", "/v1/intents/i_1", "GET /v1/intents/{id}"},
    {"POST", "/v1/intents/i_1/accept", "POST /v1/intents/{id}/accept"},
    {"POST", "/v1/intents/i_1/decline", "POST /v1/intents/{id}/decline"},
    {"POST", "/v1/intents/i_1/cancel", "POST /v1/intents/{id}/cancel"},
    {"GET", "/v1/cluster", "GET /v1/cluster"},
    {"POST", "/v1/cluster/rebalance", "POST /v1/cluster/rebalance"},
    {"POST", "/v1/cluster/nodes/n1/drain", "POST /v1/cluster/nodes/{id}/drain"},
    {"GET", "/v1/rooms/r1/analytics", "GET /v1/rooms/{id}/analytics"},
    {"POST", "/v1/rooms/r1/start_when", "POST /v1/rooms/{id}/start_when"},
    {"DELETE", "/v1/rooms/r1/start_when", "DELETE /v1/rooms/{id}/start_when"},
    {"GET", "/v1/users/alice/intents/analytics", "GET /v1/users/{id}/intents/analytics"},
    // Paths of no route.
    {"GET", "/v1/junk-17/x17", "GET unmatched"},
    {"GET", "/v1/users/alice/presence/more", "GET unmatched"},
    {"GET", "/v1/users//presence", "GET unmatched"},
    {"GET", "/v1/sessions/", "GET unmatched"},
    {"GET", "/", "GET unmatched"},
    {"GET", "", "GET unmatched"},
    {"GET", "/healthz/", "GET unmatched"},
    {"GET", "/favicon.ico", "GET unmatched"},
    {"GET", "/v1/rooms/r1/timeline/x", "GET unmatched"},
    // Methods outside the table.
    {"PATCH", "/v1/rooms/r1", "OTHER /v1/rooms/{id}"},
    {"PUT", "/v1/junk", "OTHER unmatched"},
    {"FOO-12345", "/v1/sessions", "OTHER /v1/sessions"},
    {"get", "/healthz", "OTHER /healthz"},
  };
  for (auto& r : rows)
    EXPECT_EQ(route_label(r.method, r.path), r.label) << r.method << " " << r.path;
}

// Verifies that made-up paths and methods share one label each.
TEST(RouteLabelTest, MadeUpInputSharesOneLabel) {
  for (int i = 0; i < 100; ++i) {
    auto n = std::to_string(i);
    EXPECT_EQ(route_label("GET", "/v1/junk-" + n + "/x" + n), "GET unmatched");
    EXPECT_EQ(route_label("M" + n, "/v1/junk-" + n), "OTHER unmatched");
  }
}

// Verifies presence_ws_closed_total's code label: the listed codes keep their
// slot and label, every other code (a peer may send any) shares "other".
TEST(WsCloseLabelTest, CodesOutsideTheTableAreOther) {
  using presence::gateway::ws_close_label;
  using presence::gateway::ws_close_slot;
  using presence::gateway::ws_close_slots;
  for (unsigned code : {1000u, 1001u, 1006u, 1008u, 1009u, 1011u, 1013u, 4409u})
    EXPECT_EQ(ws_close_label(ws_close_slot(code)), std::to_string(code));
  for (unsigned code : {0u, 1u, 999u, 1002u, 1005u, 1012u, 3000u, 4000u, 4999u, 65535u})
    EXPECT_EQ(ws_close_label(ws_close_slot(code)), "other") << code;
  EXPECT_EQ(ws_close_slot(4000), ws_close_slots - 1);
}

} // namespace
