// Fuzzes the gateway's HTTP request reading: Beast's request parser with the
// gateway's limits (fed in two pieces, as a socket may deliver it), then the
// target decoding and the route label of whatever parsed.
#include "gateway/request_target.hpp"

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <cstddef>
#include <cstdint>

namespace http = boost::beast::http;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0)
    return 0;
  http::request_parser<http::string_body> parser;
  parser.header_limit(16 * 1024);
  parser.body_limit(64 * 1024);
  parser.eager(true);
  boost::beast::error_code ec;
  auto split = static_cast<size_t>(data[0]) % size;
  const char* bytes = reinterpret_cast<const char*>(data);
  size_t used = parser.put(boost::asio::buffer(bytes, split), ec);
  if (ec == http::error::need_more)
    ec = {};
  if (!ec)
    parser.put(boost::asio::buffer(bytes + used, size - used), ec);
  if (!parser.is_header_done())
    return 0;
  auto& req = parser.get();
  std::string path;
  std::map<std::string, std::string> query;
  presence::gateway::split_target(std::string{req.target()}, path, query);
  auto label = presence::gateway::route_label(std::string{req.method_string()}, path);
  if (label.empty())
    __builtin_trap();
  return 0;
}
