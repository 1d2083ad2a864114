// The project's error codes, carried in `caf::error` (category "presence") from
// actors to the gateway, which maps each to an HTTP status and a protocol code.
#pragma once

#include <caf/error.hpp>
#include <caf/message.hpp>
#include <caf/scheduled_actor.hpp>

#include <cstdint>
#include <string>

namespace presence::actors {

enum class errc : uint8_t {
  /// Not an error.
  none = 0,
  /// The session does not exist or has gone offline: create a new one (404).
  session_not_found,
  /// The intent does not exist or has been forgotten (404).
  intent_not_found,
  /// The caller may not do this to this entity (403).
  forbidden,
  /// The entity is not in a state that allows this (409).
  conflict,
  /// A field's value is not acceptable (400).
  invalid_argument,
  /// The owner of the entity did not answer in time (503).
  unavailable,
  /// The session was resumed on another socket; the asking one no longer
  /// holds it (WebSocket only: error `session_taken_over`, close 4409).
  taken_over,
};

/// The protocol's error code string, e.g. "session_not_found".
std::string to_string(errc x);

/// Renders a `caf::error` of any category for logs and error bodies.
std::string render(const caf::error& e);

/// The `errc` inside `e`, or `unavailable` for CAF's own errors (timeouts, dead
/// actors), or `none` for no error.
errc code_of(const caf::error& e);

/// Keeps `self` alive when an error arrives as a message of its own: the
/// answer to a plain `send` that failed on its way (a forwarder or stub that
/// found no owner answers the sender with an error). CAF's default stops the
/// actor with that error; a node's membership actor died so (its peers took
/// the node for dead while it went on serving, and nothing it routed was
/// answered again). Every long-lived actor of the node drops such errors.
inline void keep_on_errors(caf::scheduled_actor* self) {
  self->set_error_handler([](caf::scheduled_actor*, caf::error&) {});
}

} // namespace presence::actors

CAF_ERROR_CODE_ENUM(presence::actors::errc, "presence")
