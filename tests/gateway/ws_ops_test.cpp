// Verifies the WebSocket op parser: every op of PROTOCOL.md with its fields at
// their bounds, and each malformed frame answered with the code a client sees.
#include "gateway/ws_ops.hpp"

#include <gtest/gtest.h>

using namespace presence::gateway;
using presence::actors::signal_kind;

namespace {

struct accepted_case {
  const char* frame;
  size_t index; ///< which alternative of ws_op
};

struct refused_case {
  const char* frame;
  const char* code;
};

} // namespace

TEST(WsOpsTest, AcceptsEveryOp) {
  const accepted_case cases[] = {
    {R"({"op":"hello"})", 0},
    {R"({"op":"hello","session_id":"s1","resume_token":"t","device":"d","signal":"idle"})", 0},
    {R"({"op":"hello","token":"abc"})", 0},
    {R"({"op":"signal","signal":"active"})", 1},
    {R"({"op":"signal","signal":"background"})", 1},
    {R"({"op":"subscribe","users":["a"],"rooms":["r"]})", 2},
    {R"({"op":"unsubscribe","users":[]})", 2},
    {R"({"op":"join","room":"r"})", 3},
    {R"({"op":"leave_room","room":"r","visible":false})", 3},
    {R"({"op":"intent","to_user":"b","kind":"talk"})", 4},
    {R"({"op":"intent_reply","intent_id":"i1","accept":true})", 5},
    {R"({"op":"leave"})", 6},
    {R"({"op":"leave","after_ms":0})", 6},
    {R"({"op":"leave","after_ms":10000})", 6},
  };
  for (auto& c : cases) {
    api_error err;
    auto op = parse_ws_op(c.frame, err);
    ASSERT_TRUE(op) << c.frame << ": " << err.code << " " << err.message;
    EXPECT_EQ(op->index(), c.index) << c.frame;
  }
}

TEST(WsOpsTest, RefusesMalformedFrames) {
  const refused_case cases[] = {
    {"", "invalid_frame"},
    {"not json", "invalid_frame"},
    {"[1,2]", "invalid_frame"},
    {R"({"signal":"active"})", "invalid_frame"},
    {R"({"op":7})", "invalid_frame"},
    {R"({"op":"dance"})", "unknown_op"},
    {R"({"op":"signal"})", "invalid_field"},
    {R"({"op":"signal","signal":"sleepy"})", "invalid_signal"},
    {R"({"op":"signal","signal":"active","extra":1})", "unknown_field"},
    {R"({"op":"join"})", "invalid_field"},
    {R"({"op":"join","room":"bad id"})", "invalid_id"},
    {R"({"op":"intent_reply","intent_id":"i1"})", "invalid_field"},
    {R"({"op":"leave","after_ms":-1})", "invalid_field"},
    {R"({"op":"leave","after_ms":10001})", "invalid_field"},
    {R"({"op":"leave","after_ms":"soon"})", "invalid_field"},
    {R"({"op":"hello","token":5})", "invalid_field"},
  };
  for (auto& c : cases) {
    api_error err;
    EXPECT_FALSE(parse_ws_op(c.frame, err)) << c.frame;
    EXPECT_EQ(err.code, c.code) << c.frame << ": " << err.message;
    EXPECT_FALSE(err.message.empty()) << c.frame;
  }
}

TEST(WsOpsTest, CarriesTheFields) {
  api_error err;
  auto op = parse_ws_op(
    R"({"op":"hello","session_id":"s1","resume_token":"t","token":"k","device":"d"})", err);
  ASSERT_TRUE(op);
  auto& h = std::get<ws_hello>(*op);
  EXPECT_EQ(h.session_id, "s1");
  EXPECT_EQ(h.resume_token, "t");
  EXPECT_EQ(h.token, "k");
  EXPECT_EQ(h.device, "d");
  EXPECT_FALSE(h.signal) << "a resume without a signal claims nothing";
  op = parse_ws_op(R"({"op":"leave","after_ms":1500})", err);
  ASSERT_TRUE(op);
  EXPECT_EQ(std::get<ws_leave>(*op).after_ms, 1500);
  op = parse_ws_op(R"({"op":"join","room":"r"})", err);
  ASSERT_TRUE(op);
  EXPECT_FALSE(std::get<ws_room_op>(*op).visible) << "visibility defaults by role";
  op = parse_ws_op(R"({"op":"signal","signal":"idle"})", err);
  ASSERT_TRUE(op);
  EXPECT_EQ(std::get<ws_signal>(*op).signal, signal_kind::idle);
}
