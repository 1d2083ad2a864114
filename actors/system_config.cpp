#include "actors/system_config.hpp"

#include "actors/errors.hpp"
#include "actors/handoff.hpp"
#include "actors/messages.hpp"

#include <caf/atom.hpp>

#include <algorithm>
#include <thread>

namespace presence::actors {

size_t worker_threads(const config::settings& s) {
  if (s.node.worker_threads > 0)
    return static_cast<size_t>(s.node.worker_threads);
  return std::max<size_t>(1, std::thread::hardware_concurrency());
}

void configure(caf::actor_system_config& cfg, const config::settings& s) {
  cfg.set("scheduler.max-threads", worker_threads(s));
  cfg.set("scheduler.policy", caf::atom("sharing"));
  cfg.add_error_category(caf::atom("presence"),
                         [](uint8_t code, caf::atom_value, const caf::message& ctx) {
                           auto out = to_string(static_cast<errc>(code));
                           if (!ctx.empty())
                             out += ": " + caf::to_string(ctx);
                           return out;
                         });
  cfg.add_message_type<signal_reply>("presence.signal_reply");
  cfg.add_message_type<session_view>("presence.session_view");
  cfg.add_message_type<session_update>("presence.session_update");
  cfg.add_message_type<presence_event>("presence.presence_event");
  cfg.add_message_type<user_view>("presence.user_view");
  cfg.add_message_type<member_update>("presence.member_update");
  cfg.add_message_type<room_query>("presence.room_query");
  cfg.add_message_type<room_view>("presence.room_view");
  cfg.add_message_type<room_event>("presence.room_event");
  cfg.add_message_type<room_delta>("presence.room_delta");
  cfg.add_message_type<timeline_sample>("presence.timeline_sample");
  cfg.add_message_type<std::vector<timeline_sample>>("presence.timeline");
  cfg.add_message_type<intent_view>("presence.intent_view");
  cfg.add_message_type<intent_event>("presence.intent_event");
  cfg.add_message_type<intent_list>("presence.intent_list");
  cfg.add_message_type<signal_kind>("presence.signal_kind");
  cfg.add_message_type<user_transfer>("presence.user_transfer");
  cfg.add_message_type<room_transfer>("presence.room_transfer");
  cfg.add_message_type<session_transfer>("presence.session_transfer");
  cfg.add_message_type<intent_transfer>("presence.intent_transfer");
  cfg.add_message_type<std::vector<std::string>>("presence.keys");
  cfg.add_message_type<analytics::report>("presence.analytics_report");
  cfg.add_message_type<analytics::user_intent_report>("presence.user_intent_report");
  cfg.add_message_type<storage::start_when_rule>("presence.start_when_rule");
}

} // namespace presence::actors
