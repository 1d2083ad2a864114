#include "config/settings.hpp"

#include <CLI/CLI.hpp>
#include <toml++/toml.h>

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <sstream>
#include <variant>

namespace presence::config {

namespace {

template <class T>
using accessor = T* (*)(settings&);

using field = std::variant<accessor<int64_t>, accessor<double>, accessor<bool>,
                           accessor<std::string>,
                           accessor<std::vector<std::string>>>;

struct key_spec {
  std::string name;
  field ref;
};

template <class F>
key_spec make_key(std::string name, F fn) {
  using ptr = decltype(fn(std::declval<settings&>()));
  using T = std::remove_pointer_t<ptr>;
  return key_spec{std::move(name), field{static_cast<accessor<T>>(fn)}};
}

#define PRESENCE_KEY(section, key)                                             \
  make_key(#section "." #key,                                                  \
           [](settings& s) { return &s.section.key; })

const std::vector<key_spec>& key_table() {
  static const std::vector<key_spec> table = {
    PRESENCE_KEY(node, id),
    PRESENCE_KEY(node, bind),
    PRESENCE_KEY(node, advertise),
    PRESENCE_KEY(node, http_port),
    PRESENCE_KEY(node, cluster_port),
    PRESENCE_KEY(node, data_dir),
    PRESENCE_KEY(node, seeds),
    PRESENCE_KEY(node, worker_threads),
    PRESENCE_KEY(node, io_threads),
    PRESENCE_KEY(node, timer_tick_ms),
    PRESENCE_KEY(node, passivate_after_ms),
    PRESENCE_KEY(node, stop_timeout_ms),
    PRESENCE_KEY(node, log_format),
    PRESENCE_KEY(presence, active_window_ms),
    PRESENCE_KEY(presence, idle_after_ms),
    PRESENCE_KEY(presence, stale_after_ms),
    PRESENCE_KEY(presence, offline_after_ms),
    PRESENCE_KEY(presence, grace_ms),
    PRESENCE_KEY(presence, heartbeat_active_ms),
    PRESENCE_KEY(presence, heartbeat_idle_ms),
    PRESENCE_KEY(presence, heartbeat_background_ms),
    PRESENCE_KEY(presence, offline_linger_ms),
    PRESENCE_KEY(rooms, ready_threshold),
    PRESENCE_KEY(rooms, ready_hysteresis),
    PRESENCE_KEY(rooms, timeline_interval_ms),
    PRESENCE_KEY(rooms, timeline_max_samples),
    PRESENCE_KEY(rooms, announce_max),
    PRESENCE_KEY(rooms, delta_interval_ms),
    PRESENCE_KEY(rooms, delta_max_members),
    PRESENCE_KEY(rooms, density_target),
    PRESENCE_KEY(rooms, weight_active),
    PRESENCE_KEY(rooms, weight_recent),
    PRESENCE_KEY(rooms, weight_intent),
    PRESENCE_KEY(rooms, momentum_window_ms),
    PRESENCE_KEY(rooms, analytics_bucket_ms),
    PRESENCE_KEY(rooms, analytics_max_buckets),
    PRESENCE_KEY(rooms, drop_off_ms),
    PRESENCE_KEY(rooms, media_decay_window_ms),
    PRESENCE_KEY(auth, mode),
    PRESENCE_KEY(auth, secret),
    PRESENCE_KEY(auth, allow_guests),
    PRESENCE_KEY(cluster, vnodes),
    PRESENCE_KEY(cluster, replication_factor),
    PRESENCE_KEY(cluster, failure_timeout_ms),
    PRESENCE_KEY(cluster, secret),
    PRESENCE_KEY(storage, enabled),
    PRESENCE_KEY(storage, flush_interval_ms),
    PRESENCE_KEY(limits, max_body_bytes),
    PRESENCE_KEY(limits, signals_per_second),
    PRESENCE_KEY(limits, max_connections),
    PRESENCE_KEY(limits, ws_ping_interval_ms),
    PRESENCE_KEY(limits, slow_reader_ms),
  };
  return table;
}

#undef PRESENCE_KEY

const key_spec* find_key(const std::string& name) {
  for (auto& k : key_table())
    if (k.name == name)
      return &k;
  return nullptr;
}

const char* type_name(const field& f) {
  struct visitor {
    const char* operator()(accessor<int64_t>) const { return "an integer"; }
    const char* operator()(accessor<double>) const { return "a number"; }
    const char* operator()(accessor<bool>) const { return "true or false"; }
    const char* operator()(accessor<std::string>) const { return "a string"; }
    const char* operator()(accessor<std::vector<std::string>>) const {
      return "a list of strings";
    }
  };
  return std::visit(visitor{}, f);
}

std::string trim(std::string_view s) {
  auto b = s.find_first_not_of(" \t");
  if (b == std::string_view::npos)
    return {};
  auto e = s.find_last_not_of(" \t");
  return std::string{s.substr(b, e - b + 1)};
}

// Applies a flag's raw text to the key; returns an error message or "".
std::string apply_text(settings& s, const key_spec& k, const std::string& raw) {
  auto bad = [&] {
    return k.name + ": expected " + type_name(k.ref) + ", got '" + raw + "'";
  };
  struct visitor {
    settings& s;
    const std::string& raw;
    std::function<std::string()> bad;
    std::string operator()(accessor<int64_t> f) const {
      int64_t v = 0;
      auto t = trim(raw);
      auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
      if (t.empty() || ec != std::errc{} || p != t.data() + t.size())
        return bad();
      *f(s) = v;
      return {};
    }
    std::string operator()(accessor<double> f) const {
      auto t = trim(raw);
      if (t.empty())
        return bad();
      char* end = nullptr;
      errno = 0;
      double v = std::strtod(t.c_str(), &end);
      if (errno != 0 || end != t.c_str() + t.size() || !std::isfinite(v))
        return bad();
      *f(s) = v;
      return {};
    }
    std::string operator()(accessor<bool> f) const {
      auto t = trim(raw);
      if (t == "true" || t == "1")
        *f(s) = true;
      else if (t == "false" || t == "0")
        *f(s) = false;
      else
        return bad();
      return {};
    }
    std::string operator()(accessor<std::string> f) const {
      *f(s) = raw;
      return {};
    }
    std::string operator()(accessor<std::vector<std::string>> f) const {
      std::vector<std::string> items;
      std::string_view rest = raw;
      while (!rest.empty()) {
        auto comma = rest.find(',');
        auto item = trim(rest.substr(0, comma));
        if (!item.empty())
          items.push_back(std::move(item));
        if (comma == std::string_view::npos)
          break;
        rest.remove_prefix(comma + 1);
      }
      *f(s) = std::move(items);
      return {};
    }
  };
  return std::visit(visitor{s, raw, bad}, k.ref);
}

std::string describe(const toml::node& n) {
  std::ostringstream out;
  switch (n.type()) {
    case toml::node_type::string:
      out << '\'' << *n.value<std::string>() << '\'';
      break;
    case toml::node_type::table:
      out << "a table";
      break;
    case toml::node_type::array:
      out << "an array";
      break;
    default:
      n.visit([&](auto&& v) { out << v; });
  }
  return out.str();
}

// Applies a TOML value to the key; returns an error message or "".
std::string apply_toml(settings& s, const key_spec& k, const toml::node& n) {
  auto bad = [&] {
    return k.name + ": expected " + type_name(k.ref) + ", got " + describe(n);
  };
  if (auto f = std::get_if<accessor<int64_t>>(&k.ref)) {
    if (!n.is_integer())
      return bad();
    *(*f)(s) = *n.value<int64_t>();
  } else if (auto f = std::get_if<accessor<double>>(&k.ref)) {
    if (!n.is_number())
      return bad();
    *(*f)(s) = *n.value<double>();
  } else if (auto f = std::get_if<accessor<bool>>(&k.ref)) {
    if (!n.is_boolean())
      return bad();
    *(*f)(s) = *n.value<bool>();
  } else if (auto f = std::get_if<accessor<std::string>>(&k.ref)) {
    if (!n.is_string())
      return bad();
    *(*f)(s) = *n.value<std::string>();
  } else if (auto f = std::get_if<accessor<std::vector<std::string>>>(&k.ref)) {
    auto arr = n.as_array();
    if (arr == nullptr)
      return bad();
    std::vector<std::string> items;
    for (auto& item : *arr) {
      if (!item.is_string())
        return k.name + ": expected a list of strings, got an element "
               + describe(item);
      items.push_back(*item.value<std::string>());
    }
    *(*f)(s) = std::move(items);
  }
  return {};
}

std::string env_name(const std::string& key) {
  std::string out = "PRESENCED_";
  for (char c : key)
    out += c == '.' ? '_' : static_cast<char>(std::toupper(c));
  return out;
}

std::string host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof(buf) - 1) == 0 && buf[0] != '\0')
    return buf;
  return "node";
}

std::string join_lines(const std::vector<std::string>& lines) {
  std::string out;
  for (auto& l : lines) {
    if (!out.empty())
      out += '\n';
    out += l;
  }
  return out;
}

bool valid_host_port(const std::string& s) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == s.size())
    return false;
  int port = 0;
  auto p = s.c_str() + colon + 1;
  auto [end, ec] = std::from_chars(p, s.c_str() + s.size(), port);
  return ec == std::errc{} && end == s.c_str() + s.size() && port > 0
         && port <= 65535;
}

} // namespace

std::vector<std::string> key_names() {
  std::vector<std::string> out;
  for (auto& k : key_table())
    out.push_back(k.name);
  return out;
}

command_line parse_command_line(int argc, const char* const* argv) {
  command_line cl;
  CLI::App app{"presenced: a node of the presence cluster.\n"
               "Every configuration key can be given as --<section>.<key>=<value>,\n"
               "as the environment variable PRESENCED_<SECTION>_<KEY>, or in the\n"
               "TOML file named by --config. Flags win over the environment,\n"
               "which wins over the file."};
  app.set_help_flag();
  bool help = false;
  bool version = false;
  bool check = false;
  app.add_flag("-h,--help", help, "Print this help and exit");
  app.add_flag("--version", version, "Print the version and exit");
  app.add_flag("--check-config", check,
               "Validate the configuration (file, environment, flags), print one line "
               "and exit (0: valid, 2: invalid); binds no port, opens no storage");
  app.add_option("--config", cl.config_file, "TOML configuration file");
  std::map<std::string, std::string> values;
  std::vector<std::pair<std::string, CLI::Option*>> options;
  for (auto& k : key_table()) {
    auto* opt = app.add_option("--" + k.name, values[k.name],
                               std::string{"("} + type_name(k.ref) + ")");
    opt->envname(env_name(k.name));
    options.emplace_back(k.name, opt);
  }
  try {
    app.parse(argc, const_cast<char**>(argv));
  } catch (const CLI::ParseError& e) {
    throw config_error(std::string{"command line: "} + e.what());
  }
  for (auto& [name, opt] : options)
    if (opt->count() > 0)
      cl.overrides[name] = values[name];
  cl.show_help = help;
  cl.show_version = version;
  cl.check_config = check;
  cl.help_text = app.help();
  return cl;
}

settings load(const std::string& toml_text, const std::string& origin,
              const std::map<std::string, std::string>& overrides) {
  settings s;
  std::vector<std::string> errors;
  if (!toml_text.empty()) {
    toml::table root;
    try {
      root = toml::parse(toml_text, origin);
    } catch (const toml::parse_error& e) {
      std::ostringstream out;
      out << origin << ":" << e.source().begin.line << ":"
          << e.source().begin.column << ": " << e.description();
      throw config_error(out.str());
    }
    for (auto&& [section, node] : root) {
      auto sect = std::string{section.str()};
      auto table = node.as_table();
      if (table == nullptr) {
        errors.push_back(sect + ": unknown key (expected a [section])");
        continue;
      }
      for (auto&& [key, value] : *table) {
        auto name = sect + "." + std::string{key.str()};
        auto spec = find_key(name);
        if (spec == nullptr) {
          errors.push_back(name + ": unknown key in " + origin);
          continue;
        }
        if (auto err = apply_toml(s, *spec, value); !err.empty())
          errors.push_back(err);
      }
    }
  }
  for (auto& [name, raw] : overrides) {
    auto spec = find_key(name);
    if (spec == nullptr) {
      errors.push_back(name + ": unknown key");
      continue;
    }
    if (auto err = apply_text(s, *spec, raw); !err.empty())
      errors.push_back(err);
  }
  if (errors.empty())
    errors = validate(s);
  if (!errors.empty())
    throw config_error(join_lines(errors));
  return s;
}

settings load(const command_line& cl) {
  std::string text;
  std::string origin = "(no file)";
  if (!cl.config_file.empty()) {
    std::ifstream in{cl.config_file};
    if (!in)
      throw config_error("--config: cannot read '" + cl.config_file + "'");
    std::ostringstream buf;
    buf << in.rdbuf();
    text = buf.str();
    origin = cl.config_file;
    if (text.empty())
      text = "\n"; // an empty file is a valid, empty configuration
  }
  return load(text, origin, cl.overrides);
}

std::vector<std::string> validate(settings& s) {
  std::vector<std::string> errors;
  auto positive = [&](const char* name, int64_t v) {
    if (v <= 0)
      errors.push_back(std::string{name} + ": must be greater than 0, got "
                       + std::to_string(v));
  };
  auto port = [&](const char* name, int64_t v) {
    if (v < 0 || v > 65535)
      errors.push_back(std::string{name} + ": must be a port in 0..65535, got "
                       + std::to_string(v));
  };
  // [node]
  if (s.node.id.empty())
    s.node.id = host_name();
  if (s.node.bind.empty())
    errors.push_back("node.bind: must not be empty");
  if (s.node.advertise.empty()) {
    s.node.advertise = s.node.bind;
  } else {
    bool chars = std::all_of(s.node.advertise.begin(), s.node.advertise.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_'
             || c == ':';
    });
    // One colon is host:port; an IPv6 address has several.
    bool port = std::count(s.node.advertise.begin(), s.node.advertise.end(), ':') == 1;
    if (!chars || port)
      errors.push_back("node.advertise: must be a host name or an IP address without a port "
                       "(other nodes reach node.cluster_port there), got '"
                       + s.node.advertise + "'");
  }
  port("node.http_port", s.node.http_port);
  port("node.cluster_port", s.node.cluster_port);
  if (s.node.data_dir.empty())
    errors.push_back("node.data_dir: must not be empty");
  for (auto& seed : s.node.seeds)
    if (!valid_host_port(seed))
      errors.push_back("node.seeds: '" + seed + "' is not host:port");
  if (s.node.worker_threads < 0 || s.node.worker_threads > 256)
    errors.push_back("node.worker_threads: must be in 0..256 (0: automatic), got "
                     + std::to_string(s.node.worker_threads));
  if (s.node.io_threads < 1 || s.node.io_threads > 256)
    errors.push_back("node.io_threads: must be in 1..256, got "
                     + std::to_string(s.node.io_threads));
  if (s.node.timer_tick_ms < 1 || s.node.timer_tick_ms > 100)
    errors.push_back("node.timer_tick_ms: must be in 1..100 (transitions must "
                     "land within 100 ms), got "
                     + std::to_string(s.node.timer_tick_ms));
  if (s.node.log_format != "text" && s.node.log_format != "json")
    errors.push_back("node.log_format: must be \"text\" or \"json\", got \""
                     + s.node.log_format + "\"");
  // [presence]
  auto& p = s.presence;
  positive("presence.active_window_ms", p.active_window_ms);
  positive("presence.grace_ms", p.grace_ms);
  positive("presence.heartbeat_active_ms", p.heartbeat_active_ms);
  positive("presence.heartbeat_idle_ms", p.heartbeat_idle_ms);
  positive("presence.heartbeat_background_ms", p.heartbeat_background_ms);
  if (p.offline_linger_ms < 0)
    errors.push_back("presence.offline_linger_ms: must be 0 or more, got "
                     + std::to_string(p.offline_linger_ms));
  struct named {
    const char* name;
    int64_t value;
  };
  named chain[] = {{"presence.active_window_ms", p.active_window_ms},
                   {"presence.idle_after_ms", p.idle_after_ms},
                   {"presence.stale_after_ms", p.stale_after_ms},
                   {"presence.offline_after_ms", p.offline_after_ms}};
  for (size_t i = 1; i < std::size(chain); ++i)
    if (chain[i].value <= chain[i - 1].value)
      errors.push_back(std::string{chain[i - 1].name} + " < " + chain[i].name
                       + " must hold (thresholds must increase strictly), got "
                       + std::to_string(chain[i - 1].value)
                       + " >= " + std::to_string(chain[i].value));
  named beats[] = {{"presence.heartbeat_active_ms", p.heartbeat_active_ms},
                   {"presence.heartbeat_idle_ms", p.heartbeat_idle_ms},
                   {"presence.heartbeat_background_ms",
                    p.heartbeat_background_ms}};
  for (auto& b : beats)
    if (b.value >= p.stale_after_ms)
      errors.push_back(std::string{b.name}
                       + ": must be below presence.stale_after_ms ("
                       + std::to_string(p.stale_after_ms) + "), got "
                       + std::to_string(b.value));
  // [rooms]
  auto& r = s.rooms;
  if (!(r.ready_threshold > 0 && r.ready_threshold <= 1))
    errors.push_back("rooms.ready_threshold: must be in (0, 1], got "
                     + std::to_string(r.ready_threshold));
  if (!(r.ready_hysteresis >= 0 && r.ready_hysteresis < r.ready_threshold))
    errors.push_back("rooms.ready_hysteresis: must be in [0, "
                     "rooms.ready_threshold), got "
                     + std::to_string(r.ready_hysteresis));
  positive("rooms.timeline_interval_ms", r.timeline_interval_ms);
  positive("rooms.timeline_max_samples", r.timeline_max_samples);
  positive("rooms.announce_max", r.announce_max);
  positive("rooms.delta_interval_ms", r.delta_interval_ms);
  positive("rooms.delta_max_members", r.delta_max_members);
  positive("rooms.momentum_window_ms", r.momentum_window_ms);
  if (!(r.analytics_bucket_ms >= 1000 && r.analytics_bucket_ms <= 86400000))
    errors.push_back("rooms.analytics_bucket_ms: must be in [1000, 86400000], got "
                     + std::to_string(r.analytics_bucket_ms));
  if (!(r.analytics_max_buckets >= 1 && r.analytics_max_buckets <= 10080))
    errors.push_back("rooms.analytics_max_buckets: must be in [1, 10080], got "
                     + std::to_string(r.analytics_max_buckets));
  positive("rooms.drop_off_ms", r.drop_off_ms);
  positive("rooms.media_decay_window_ms", r.media_decay_window_ms);
  if (!(r.density_target >= 1))
    errors.push_back("rooms.density_target: must be 1 or more, got "
                     + std::to_string(r.density_target));
  for (auto [name, w] : {std::pair{"rooms.weight_active", r.weight_active},
                         std::pair{"rooms.weight_recent", r.weight_recent},
                         std::pair{"rooms.weight_intent", r.weight_intent}})
    if (!(w >= 0 && w <= 1))
      errors.push_back(std::string{name} + ": must be in [0, 1], got "
                       + std::to_string(w));
  if (std::abs(r.weight_active + r.weight_recent + r.weight_intent - 1.0) > 1e-9)
    errors.push_back("rooms.weight_active + rooms.weight_recent + "
                     "rooms.weight_intent: must add up to 1");
  // [auth]
  if (s.auth.mode.empty())
    s.auth.mode = s.node.seeds.empty() ? "dev" : "jwt";
  if (s.auth.mode != "dev" && s.auth.mode != "jwt")
    errors.push_back("auth.mode: must be \"jwt\" or \"dev\", got \""
                     + s.auth.mode + "\"");
  if (s.auth.mode == "jwt" && s.auth.secret.size() < 16)
    errors.push_back("auth.secret: auth.mode = \"jwt\" needs a secret of at "
                     "least 16 bytes");
  // [cluster]
  if (s.cluster.vnodes < 1 || s.cluster.vnodes > 4096)
    errors.push_back("cluster.vnodes: must be in 1..4096, got "
                     + std::to_string(s.cluster.vnodes));
  if (s.cluster.replication_factor < 1 || s.cluster.replication_factor > 5)
    errors.push_back("cluster.replication_factor: must be in 1..5, got "
                     + std::to_string(s.cluster.replication_factor));
  positive("cluster.failure_timeout_ms", s.cluster.failure_timeout_ms);
  if (!s.cluster.secret.empty() && s.cluster.secret.size() < 16)
    errors.push_back("cluster.secret: needs at least 16 bytes (or leave it empty to use "
                     "auth.secret)");
  // [storage]
  if (s.storage.flush_interval_ms < 1 || s.storage.flush_interval_ms > 60000)
    errors.push_back("storage.flush_interval_ms: must be in 1..60000, got "
                     + std::to_string(s.storage.flush_interval_ms));
  // [limits]
  positive("limits.max_body_bytes", s.limits.max_body_bytes);
  positive("limits.signals_per_second", s.limits.signals_per_second);
  positive("limits.max_connections", s.limits.max_connections);
  positive("limits.ws_ping_interval_ms", s.limits.ws_ping_interval_ms);
  positive("limits.slow_reader_ms", s.limits.slow_reader_ms);
  positive("node.passivate_after_ms", s.node.passivate_after_ms);
  positive("node.stop_timeout_ms", s.node.stop_timeout_ms);
  return errors;
}

std::string to_toml(const settings& in) {
  settings s = in; // accessors take a mutable reference
  std::map<std::string, toml::table> sections;
  std::vector<std::string> order;
  for (auto& k : key_table()) {
    auto dot = k.name.find('.');
    auto sect = k.name.substr(0, dot);
    auto key = k.name.substr(dot + 1);
    if (sections.find(sect) == sections.end())
      order.push_back(sect);
    auto& t = sections[sect];
    std::visit(
      [&](auto f) {
        using T = std::remove_pointer_t<decltype(f(s))>;
        if constexpr (std::is_same_v<T, std::vector<std::string>>) {
          toml::array arr;
          for (auto& x : *f(s))
            arr.push_back(x);
          t.insert(key, std::move(arr));
        } else {
          t.insert(key, *f(s));
        }
      },
      k.ref);
  }
  std::ostringstream out;
  for (auto& sect : order) {
    if (sect == "auth" || (sect == "cluster" && sections[sect].contains("secret")))
      sections[sect].insert_or_assign("secret", "<redacted>");
    out << '[' << sect << "]\n" << sections[sect] << "\n\n";
  }
  return out.str();
}

} // namespace presence::config
