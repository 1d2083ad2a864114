#include "gateway/metrics_text.hpp"

#include "actors/room_actor.hpp"

#include "actors/census.hpp"
#include "actors/messages.hpp"
#include "actors/node.hpp"
#include "gateway/server.hpp"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <map>
#include <vector>

namespace presence::gateway {

http_metrics::http_metrics() : registry_(std::make_shared<prometheus::Registry>()) {
  requests_ = &prometheus::BuildCounter()
                 .Name("presence_http_requests_by_route_total")
                 .Help("HTTP requests by route and status")
                 .Register(*registry_);
  latency_ = &prometheus::BuildHistogram()
                .Name("presence_http_request_seconds")
                .Help("HTTP request latency by route, from parsed request to response")
                .Register(*registry_);
}

void http_metrics::record(const std::string& route, unsigned status, double seconds) {
  requests_->Add({{"route", route}, {"status", std::to_string(status)}}).Increment();
  static const prometheus::Histogram::BucketBoundaries buckets = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5};
  latency_->Add({{"route", route}}, buckets).Observe(seconds);
}

namespace {

// A duration_histogram as a Prometheus histogram in seconds.
void add_to(prometheus::Family<prometheus::Histogram>& family,
            const std::map<std::string, std::string>& labels,
            const actors::duration_histogram& h) {
  prometheus::Histogram::BucketBoundaries bounds;
  std::vector<double> counts;
  for (size_t i = 0; i < h.bounds(); ++i) {
    bounds.push_back(static_cast<double>(h.bound_ms(i)) / 1000.0);
    counts.push_back(static_cast<double>(h.bucket(i)));
  }
  counts.push_back(static_cast<double>(h.bucket(h.bounds())));
  family.Add(labels, bounds).ObserveMultiple(counts, static_cast<double>(h.sum_ms()) / 1000.0);
}

void add_histogram(prometheus::Registry& reg, const char* name, const char* help,
                   const actors::duration_histogram& h) {
  add_to(prometheus::BuildHistogram().Name(name).Help(help).Register(reg), {}, h);
}

} // namespace

std::string render_metrics(actors::node& n, const gateway_metrics& g,
                           http_metrics& http) {
  using namespace prometheus;
  Registry reg;
  auto& m = n.metrics();
  auto& sessions = BuildGauge()
                     .Name("presence_sessions")
                     .Help("Live sessions by derived state")
                     .Register(reg);
  auto& users = BuildGauge()
                  .Name("presence_users")
                  .Help("User actors by published state")
                  .Register(reg);
  for (size_t i = 0; i < actors::state_count; ++i) {
    auto label = std::string{actors::to_string(static_cast<actors::state>(i))};
    sessions.Add({{"state", label}}).Set(static_cast<double>(m.sessions_by_state[i].load()));
    users.Add({{"state", label}}).Set(static_cast<double>(m.users_by_state[i].load()));
  }
  auto gauge = [&](const char* name, const char* help, double v) {
    BuildGauge().Name(name).Help(help).Register(reg).Add({}).Set(v);
  };
  auto counter = [&](const char* name, const char* help, double v) {
    BuildCounter().Name(name).Help(help).Register(reg).Add({}).Increment(v);
  };
  auto& actors_by_kind =
    BuildGauge()
      .Name("presence_actors")
      .Help("Actors running in this process by kind (forwarder, passivated and handoff "
            "count again entities in that role)")
      .Register(reg);
  for (size_t i = 0; i < actors::census::kind_count; ++i) {
    auto k = static_cast<actors::census::kind>(i);
    actors_by_kind.Add({{"kind", actors::census::name(k)}})
      .Set(static_cast<double>(actors::census::live(k)));
  }
  gauge("presence_rooms", "Room actors", static_cast<double>(m.rooms.load()));
  auto& by_phase = BuildGauge()
                     .Name("presence_rooms_by_phase")
                     .Help("Room actors by phase")
                     .Register(reg);
  for (size_t i = 0; i < actors::room_phase_count; ++i)
    by_phase.Add({{"phase", std::string{actors::to_string(static_cast<actors::room_phase>(i))}}})
      .Set(static_cast<double>(m.rooms_by_phase[i].load(std::memory_order_relaxed)));
  auto& by_status = BuildGauge()
                      .Name("presence_intents_by_status")
                      .Help("Intent actors by status (finished ones stay for their retention)")
                      .Register(reg);
  for (size_t i = 0; i < actors::intent_status_count; ++i)
    by_status
      .Add({{"status", std::string{actors::to_string(static_cast<actors::intent_status>(i))}}})
      .Set(static_cast<double>(m.intents_by_status[i].load(std::memory_order_relaxed)));
  auto& finished = BuildCounter()
                     .Name("presence_intents_finished_total")
                     .Help("Intents finished on this node, by final status and whether they "
                           "had been delivered")
                     .Register(reg);
  for (size_t i = 0; i < actors::final_intent_status_count; ++i) {
    auto status = std::string{actors::to_string(
      static_cast<actors::intent_status>(actors::first_final_intent_status + i))};
    for (size_t d = 0; d < 2; ++d)
      finished.Add({{"status", status}, {"delivered", d == 1 ? "true" : "false"}})
        .Increment(static_cast<double>(m.intents_finished[i * 2 + d].load(std::memory_order_relaxed)));
  }
  add_histogram(reg, "presence_intent_delivery_seconds",
                "Intents delivered on this node: created to delivered", m.intent_delivery);
  auto& answers = BuildHistogram()
                    .Name("presence_intent_answer_seconds")
                    .Help("Intents answered on this node: delivered to accepted or declined")
                    .Register(reg);
  add_to(answers, {{"status", "accepted"}}, m.intent_answer_accepted);
  add_to(answers, {{"status", "declined"}}, m.intent_answer_declined);
  add_histogram(reg, "presence_heartbeat_lateness_seconds",
                "Signals by how much later than the session's issued heartbeat_ms they "
                "came (0: on time)",
                m.heartbeat_lateness);
  gauge("presence_cluster_epoch", "Epoch of the cluster view this node holds (0: none yet)",
        static_cast<double>(m.cluster_epoch.load(std::memory_order_relaxed)));
  gauge("presence_cluster_share", "Fraction of keys the ring gives this node (0..1)",
        static_cast<double>(m.cluster_share_ppm.load(std::memory_order_relaxed)) / 1e6);
  auto& members = BuildGauge()
                    .Name("presence_cluster_members")
                    .Help("Members of this node's view by status (unreachable: seen down, "
                          "not yet out of the view)")
                    .Register(reg);
  for (size_t i = 0; i < actors::member_status_count; ++i)
    members.Add({{"status", std::string{actors::to_string(static_cast<actors::member_status>(i))}}})
      .Set(static_cast<double>(m.cluster_members[i].load(std::memory_order_relaxed)));
  auto oldest = m.replication_oldest_pending_at.load(std::memory_order_relaxed);
  gauge("presence_replication_lag_seconds",
        "Age of the oldest entity change its replica nodes have not confirmed yet "
        "(0: none waits)",
        oldest > 0 ? static_cast<double>(std::max<int64_t>(n.now_ms() - oldest, 0)) / 1000.0
                   : 0.0);
  auto& closed = BuildCounter()
                   .Name("presence_ws_closed_total")
                   .Help("WebSockets ended, by the close code that ended them (the node's, or "
                         "the peer's when it closed first; 1006: no close handshake)")
                   .Register(reg);
  for (size_t i = 0; i < ws_close_slots; ++i)
    closed.Add({{"code", ws_close_label(i)}})
      .Increment(static_cast<double>(g.ws_closed[i].load(std::memory_order_relaxed)));
  gauge("presence_node_ready", "1 once the node recovered and is a member; 0 while it "
        "recovers, joins or is on the minority side", n.ready() ? 1.0 : 0.0);
  counter("presence_sessions_opened_total", "Sessions opened (POST /v1/sessions or hello)",
          static_cast<double>(m.sessions_opened.load()));
  counter("presence_sessions_resumed_total", "Sessions resumed with their token",
          static_cast<double>(m.sessions_resumed.load()));
  counter("presence_sessions_taken_over_total",
          "Sockets told that another socket resumed their session (close 4409)",
          static_cast<double>(m.sessions_taken_over.load()));
  gauge("presence_users_dormant", "Users kept as a record only (no actor)",
        static_cast<double>(n.router().dormant()));
  gauge("presence_rooms_dormant", "Rooms kept as a record only (no actor)",
        static_cast<double>(n.router().dormant_rooms()));
  counter("presence_passivated_total", "Idle users and rooms stopped (node.passivate_after_ms)",
          static_cast<double>(m.passivated.load()));
  gauge("presence_entities", "Entities registered with the router (all kinds)",
        static_cast<double>(n.router().size()));
  gauge("presence_intents", "Intent actors", static_cast<double>(m.intents.load()));
  gauge("presence_timers_armed", "Pending entity wake-ups",
        static_cast<double>(n.timers().armed()));
  counter("presence_signals_total", "Signals received", static_cast<double>(m.signals.load()));
  counter("presence_session_transitions_total", "Session state changes",
          static_cast<double>(m.session_transitions.load()));
  counter("presence_user_transitions_total", "User state changes (seq increments)",
          static_cast<double>(m.user_transitions.load()));
  counter("presence_events_sent_total", "Events sent to subscribers",
          static_cast<double>(m.events_sent.load()));
  gauge("presence_replication_pending",
        "Entity changes their replica nodes have not confirmed yet",
        static_cast<double>(m.replication_pending.load()));
  gauge("presence_handoffs_pending",
        "Entities that moved here and wait for their state from the old owner",
        static_cast<double>(m.handoffs_pending.load()));
  counter("presence_replicated_total", "Entity changes sent to replica nodes",
          static_cast<double>(m.replicated.load()));
  gauge("presence_replicas_held", "Replicas this node holds for other nodes' entities",
        static_cast<double>(m.replicas_held.load()));
  counter("presence_timer_fires_total", "Entity wake-ups fired",
          static_cast<double>(m.timer_fires.load()));
  gauge("presence_timer_lateness_p99_ms", "Timer lateness, 99th percentile since start",
        static_cast<double>(m.timer_lateness.quantile(0.99)));
  gauge("presence_http_connections", "Open HTTP connections",
        static_cast<double>(g.connections.load()));
  gauge("presence_sockets_open", "Open WebSockets", static_cast<double>(g.sockets_open.load()));
  counter("presence_http_requests_total", "HTTP requests",
          static_cast<double>(g.http_requests.load()));
  counter("presence_ws_frames_in_total", "WebSocket frames received",
          static_cast<double>(g.ws_frames_in.load()));
  counter("presence_ws_frames_out_total", "WebSocket frames sent",
          static_cast<double>(g.ws_frames_out.load()));
  counter("presence_ws_closed_slow_total", "WebSockets closed as slow readers",
          static_cast<double>(g.ws_closed_slow.load()));
  counter("presence_ws_frames_coalesced_total",
          "Events replaced by a newer event of their topic before they were sent",
          static_cast<double>(g.ws_frames_coalesced.load()));
  counter("presence_ws_closed_policy_total", "WebSockets closed with 1008",
          static_cast<double>(g.ws_closed_policy.load()));
  counter("presence_rejected_connections_total", "Connections over limits.max_connections",
          static_cast<double>(g.rejected_connections.load()));
  counter("presence_storage_records_skipped_total",
          "Unreadable records skipped at recovery (corrupt or of an unknown version)",
          static_cast<double>(m.records_skipped.load()));
  counter("presence_storage_read_errors_total",
          "Reads that failed at recovery (a kind that could not be scanned; the node then "
          "does not start)",
          static_cast<double>(m.storage_read_errors.load(std::memory_order_relaxed)));
  gauge("presence_recovery_entities", "Entities restored at the last start",
        static_cast<double>(m.records_recovered.load()));
  gauge("presence_recovery_seconds", "Duration of the last recovery",
        static_cast<double>(m.recovery_ms.load()) / 1000.0);
  if (auto* w = n.writer()) {
    auto& ws = w->stats();
    counter("presence_storage_changes_total", "Snapshot changes handed to the writer",
            static_cast<double>(ws.changes.load()));
    counter("presence_storage_records_written_total", "Records written (puts and deletes)",
            static_cast<double>(ws.records_written.load()));
    counter("presence_storage_bytes_written_total", "Value bytes written",
            static_cast<double>(ws.bytes_written.load()));
    counter("presence_storage_batches_total", "Write batches",
            static_cast<double>(ws.batches.load()));
    counter("presence_storage_write_errors_total", "Failed batches (kept and retried)",
            static_cast<double>(ws.write_errors.load()));
    gauge("presence_storage_pending", "Changes not yet on disk",
          static_cast<double>(w->unwritten())
            + static_cast<double>(actors::deferred_room_writes()));
    gauge("presence_storage_last_flush_seconds", "Duration of the latest flush",
          static_cast<double>(ws.last_flush_us.load()) / 1e6);
  }
  if (auto* st = n.store())
    gauge("presence_storage_db_bytes", "Database size (live SST files and memtables)",
          static_cast<double>(st->size_bytes()));
  auto families = reg.Collect();
  auto per_route = http.registry().Collect();
  families.insert(families.end(), per_route.begin(), per_route.end());
  return TextSerializer{}.Serialize(families);
}

} // namespace presence::gateway
