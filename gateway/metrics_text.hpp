// /metrics: the node's and the gateway's counters in Prometheus text format,
// built with prometheus-cpp at each scrape. Thread-safe (reads atomics only).
#pragma once

#include <string>

namespace presence::actors {
class node;
}

namespace presence::gateway {

struct gateway_metrics;

std::string render_metrics(actors::node& n, const gateway_metrics& g);

} // namespace presence::gateway
