// Fuzzes HTTP request-target decoding (path and query).
#include "gateway/request_target.hpp"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string path;
  std::map<std::string, std::string> query;
  presence::gateway::split_target({reinterpret_cast<const char*>(data), size}, path,
                                  query);
  return 0;
}
