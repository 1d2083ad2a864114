#include "actors/errors.hpp"

#include <caf/atom.hpp>
#include <caf/sec.hpp>

namespace presence::actors {

std::string to_string(errc x) {
  switch (x) {
    case errc::none:
      return "none";
    case errc::session_not_found:
      return "session_not_found";
    case errc::intent_not_found:
      return "intent_not_found";
    case errc::forbidden:
      return "forbidden";
    case errc::conflict:
      return "conflict";
    case errc::invalid_argument:
      return "invalid_argument";
    case errc::unavailable:
      return "unavailable";
    case errc::taken_over:
      return "session_taken_over";
  }
  return "unknown";
}

errc code_of(const caf::error& e) {
  if (!e)
    return errc::none;
  if (e.category() == caf::atom("presence"))
    return static_cast<errc>(e.code());
  return errc::unavailable;
}

std::string render(const caf::error& e) {
  if (!e)
    return "none";
  if (e.category() == caf::atom("presence")) {
    auto out = to_string(static_cast<errc>(e.code()));
    if (!e.context().empty() && e.context().match_elements<std::string>())
      out += ": " + e.context().get_as<std::string>(0);
    return out;
  }
  if (e.category() == caf::atom("system"))
    return caf::to_string(static_cast<caf::sec>(e.code()));
  return caf::to_string(e);
}

} // namespace presence::actors
