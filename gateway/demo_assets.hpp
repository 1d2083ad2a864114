// The demo page's files, built into the binary (gateway/embed_assets.cmake):
// `/demo/...` from clients/demo/, `/demo/lib/...` from clients/js/src/.
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

namespace presence::gateway {

struct demo_asset {
  std::string_view path; ///< e.g. "/demo/index.html"
  std::string_view content_type;
  const unsigned char* data;
  size_t size;
};

const std::vector<demo_asset>& demo_assets();

} // namespace presence::gateway
