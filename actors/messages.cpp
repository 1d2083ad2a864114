#include "actors/messages.hpp"

namespace presence::actors {

std::string_view to_string(intent_status x) {
  switch (x) {
    case intent_status::pending:
      return "pending";
    case intent_status::delivered:
      return "delivered";
    case intent_status::accepted:
      return "accepted";
    case intent_status::declined:
      return "declined";
    case intent_status::expired:
      return "expired";
    case intent_status::cancelled:
      return "cancelled";
  }
  return "pending";
}

} // namespace presence::actors
