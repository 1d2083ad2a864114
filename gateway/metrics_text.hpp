// /metrics: the node's and the gateway's counters in Prometheus text format,
// built with prometheus-cpp at each scrape. Thread-safe (reads atomics only).
#pragma once

#include "gateway/request_target.hpp" // route_label

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <memory>
#include <string>
#include <string_view>

namespace presence::actors {
class node;
}

namespace presence::gateway {

struct gateway_metrics;

/// Per-route HTTP metrics, updated by every request (prometheus-cpp's metric
/// updates are thread-safe).
class http_metrics {
public:
  http_metrics();

  /// Records one request: `route` is its template ("GET /v1/users/{id}/presence").
  void record(const std::string& route, unsigned status, double seconds);

  prometheus::Registry& registry() { return *registry_; }

private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>* requests_;
  prometheus::Family<prometheus::Histogram>* latency_;
};



std::string render_metrics(actors::node& n, const gateway_metrics& g,
                           http_metrics& http);

} // namespace presence::gateway
