#include "actors/analytics.hpp"

#include <algorithm>
#include <map>

namespace presence::actors::analytics {

using storage::analytics_bucket;
using storage::analytics_episode;
using storage::analytics_sample;
using storage::room_analytics;

limits limits_of(const config::rooms_section& cfg) {
  return limits{cfg.analytics_bucket_ms, cfg.analytics_max_buckets, cfg.drop_off_ms,
                cfg.media_decay_window_ms};
}

int64_t bucket_start(int64_t t, int64_t bucket_ms) {
  auto r = t % bucket_ms;
  return r < 0 ? t - r - bucket_ms : t - r;
}

analytics_bucket& bucket_at(room_analytics& a, int64_t now, const limits& l) {
  auto t = bucket_start(now, l.bucket_ms);
  auto& xs = a.buckets;
  if (!xs.empty() && xs.back().t == t)
    return xs.back(); // the common case
  auto max = static_cast<size_t>(std::max<int64_t>(1, l.max_buckets));
  auto i = std::lower_bound(xs.begin(), xs.end(), t,
                            [](const analytics_bucket& b, int64_t x) { return b.t < x; });
  if (i != xs.end() && i->t == t)
    return *i;
  if (i == xs.begin() && xs.size() >= max)
    return xs.front(); // older than all that is kept, and no room
  analytics_bucket b;
  b.t = t;
  auto at = i - xs.begin();
  xs.insert(i, b);
  if (xs.size() > max) {
    xs.erase(xs.begin());
    --at;
  }
  return xs[static_cast<size_t>(at)];
}

void accumulate(room_analytics& a, int64_t from, int64_t to, room_phase phase,
                double readiness, const limits& l) {
  if (phase == room_phase::empty || to <= from)
    return;
  // Only the last max_buckets buckets of a long span are kept anyway.
  auto first = bucket_start(to - 1, l.bucket_ms) - (l.max_buckets - 1) * l.bucket_ms;
  from = std::max(from, first);
  auto p = static_cast<size_t>(phase);
  for (auto x = from; x < to;) {
    auto& b = bucket_at(a, x, l);
    auto end = std::max(b.t + l.bucket_ms, x + 1); // a clamped bucket takes the rest
    auto part = std::min(to, end) - x;
    if (b.present_ms() == 0) {
      b.readiness_min = readiness;
      b.readiness_max = readiness;
    } else {
      b.readiness_min = std::min(b.readiness_min, readiness);
      b.readiness_max = std::max(b.readiness_max, readiness);
    }
    b.phase_ms[p] += part;
    b.readiness_ms += readiness * static_cast<double>(part);
    x += part;
  }
}

bool note_level(room_analytics& a, int64_t now, room_phase phase, double readiness,
                const limits& l) {
  auto open = a.seg_at != 0;
  if (open && static_cast<room_phase>(a.seg_phase) == phase && a.seg_readiness == readiness)
    return false;
  if (!open && phase == room_phase::empty)
    return false;
  if (open)
    accumulate(a, a.seg_at, now, static_cast<room_phase>(a.seg_phase), a.seg_readiness, l);
  if (phase == room_phase::empty) {
    a.seg_at = 0;
    a.seg_readiness = 0;
    a.seg_phase = 0;
  } else {
    a.seg_at = now;
    a.seg_readiness = readiness;
    a.seg_phase = static_cast<uint8_t>(phase);
  }
  ++a.revision;
  return true;
}

namespace {

analytics_episode* open_episode(room_analytics& a) {
  if (a.episodes.empty() || a.episodes.back().ended_at != 0)
    return nullptr;
  return &a.episodes.back();
}

analytics_episode& new_episode(room_analytics& a, int64_t started_at) {
  analytics_episode e;
  e.started_at = started_at;
  a.episodes.push_back(e);
  if (a.episodes.size() > max_episodes)
    a.episodes.erase(a.episodes.begin());
  return a.episodes.back();
}

void push_capped(std::vector<analytics_sample>& xs, const analytics_sample& s,
                 size_t cap = max_samples) {
  xs.push_back(s);
  if (xs.size() > cap)
    xs.erase(xs.begin(), xs.begin() + static_cast<ptrdiff_t>(xs.size() - cap));
}

} // namespace

bool note_phase(room_analytics& a, room_phase prev, room_phase next, int64_t now,
                int64_t present, double readiness) {
  if (prev == next)
    return false;
  auto* e = open_episode(a);
  if (next == room_phase::empty) {
    if (e == nullptr)
      return false;
    e->ended_at = now;
  } else {
    if (e == nullptr)
      e = &new_episode(a, prev == room_phase::empty ? now : 0);
    if (next == room_phase::ready && e->ready_at == 0) {
      e->ready_at = now;
      e->present_at_ready = present;
      e->readiness_at_ready = readiness;
    }
    if (prev == room_phase::ready && next == room_phase::cooling && e->cooling_at == 0) {
      e->cooling_at = now;
      e->present_at_cooling = present;
      e->readiness_at_cooling = readiness;
    }
  }
  ++a.revision;
  return true;
}

drop_off classify_leave(int64_t joined_at, int64_t left_at, bool saw_ready,
                        int64_t drop_off_ms) {
  drop_off d;
  if (joined_at <= 0)
    return d;
  d.before_ready = !saw_ready;
  d.quickly = left_at - joined_at <= drop_off_ms;
  return d;
}

void note_join(room_analytics& a, int64_t now, const limits& l) {
  bucket_at(a, now, l).joins += 1;
  ++a.revision;
}

void note_leave(room_analytics& a, int64_t now, int64_t joined_at, bool saw_ready,
                const limits& l) {
  auto& b = bucket_at(a, now, l);
  b.leaves += 1;
  ++a.revision;
  if (joined_at <= 0)
    return;
  auto d = classify_leave(joined_at, now, saw_ready, l.drop_off_ms);
  b.left_before_ready += d.before_ready ? 1 : 0;
  b.left_quickly += d.quickly ? 1 : 0;
  b.left_before_ready_quickly += d.before_ready && d.quickly ? 1 : 0;
  push_capped(a.stays, analytics_sample{now, std::max<int64_t>(0, now - joined_at),
                                        analytics_sample::stay});
}

std::optional<analytics_sample> attention_decay(state prev, state next,
                                                int64_t last_active_at, int64_t now,
                                                bool media_attached, int64_t media_off_at,
                                                const limits& l) {
  if (last_active_at <= 0)
    return std::nullopt;
  uint8_t kind = 0;
  if (prev == state::active && next == state::idle)
    kind = analytics_sample::to_idle;
  else if ((prev == state::active || prev == state::idle) && next == state::away)
    kind = analytics_sample::to_away;
  else
    return std::nullopt;
  if (!media_attached && media_off_at > 0 && now >= media_off_at
      && now - media_off_at <= l.media_decay_window_ms)
    kind += 2; // the _after_media kinds
  return analytics_sample{now, std::max<int64_t>(0, now - last_active_at), kind};
}

void note_decay(room_analytics& a, const analytics_sample& s, const limits& l) {
  bucket_at(a, s.t, l); // every sample has its bucket
  push_capped(a.decays, s);
  ++a.revision;
}

void note_intent_delivered(room_analytics& a, int64_t now, int64_t created_at,
                           int64_t delivered_at, const limits& l) {
  bucket_at(a, now, l);
  push_capped(a.intent_times,
              analytics_sample{now, std::max<int64_t>(0, delivered_at - created_at),
                               analytics_sample::intent_to_delivered});
  ++a.revision;
}

void note_intent_final(room_analytics& a, int64_t now, int outcome, int64_t delivered_at,
                       const limits& l) {
  if (outcome < 0 || outcome > 3)
    return;
  auto& b = bucket_at(a, now, l);
  b.intents_final[static_cast<size_t>(outcome)] += 1;
  if (delivered_at > 0) {
    b.intents_final_delivered += 1;
    if (outcome <= 1)
      push_capped(a.intent_times,
                  analytics_sample{now, std::max<int64_t>(0, now - delivered_at),
                                   analytics_sample::intent_to_answer});
  }
  ++a.revision;
}

bool note_user_intent(storage::intent_outcomes& d, int64_t now, bool known_open,
                      bool was_pending, bool delivered_now, int outcome,
                      int64_t created_at, int64_t delivered_at) {
  bool changed = false;
  if (delivered_now && delivered_at > 0 && (!known_open || was_pending)) {
    push_capped(d.times,
                analytics_sample{now, std::max<int64_t>(0, delivered_at - created_at),
                                 analytics_sample::intent_to_delivered},
                max_user_intent_samples);
    changed = true;
  }
  if (outcome >= 0 && outcome <= 3 && known_open) {
    d.final[static_cast<size_t>(outcome)] += 1;
    if (delivered_at > 0) {
      d.final_delivered += 1;
      if (outcome <= 1)
        push_capped(d.times,
                    analytics_sample{now, std::max<int64_t>(0, now - delivered_at),
                                     analytics_sample::intent_to_answer},
                    max_user_intent_samples);
    }
    changed = true;
  }
  return changed;
}

intent_report intent_report_of(const std::array<int64_t, 4>& final, int64_t delivered,
                               const std::vector<analytics_sample>& times, int64_t from) {
  intent_report r;
  r.final = final;
  r.final_delivered = delivered;
  std::vector<int64_t> to_delivered;
  std::vector<int64_t> to_answer;
  for (auto& s : times) {
    if (s.t < from)
      continue;
    if (s.kind == analytics_sample::intent_to_delivered)
      to_delivered.push_back(s.ms);
    else if (s.kind == analytics_sample::intent_to_answer)
      to_answer.push_back(s.ms);
  }
  r.to_delivered = percentiles_of(std::move(to_delivered));
  r.to_answer = percentiles_of(std::move(to_answer));
  return r;
}

user_intent_report summarize_user(const storage::user_intent_analytics& a, int64_t now) {
  user_intent_report r;
  r.now = now;
  r.revision = a.revision;
  r.outgoing = intent_report_of(a.outgoing.final, a.outgoing.final_delivered,
                                a.outgoing.times, 0);
  r.incoming = intent_report_of(a.incoming.final, a.incoming.final_delivered,
                                a.incoming.times, 0);
  return r;
}

int64_t percentile(std::vector<int64_t>& xs, int p) {
  if (xs.empty())
    return 0;
  std::sort(xs.begin(), xs.end());
  auto n = static_cast<int64_t>(xs.size());
  auto rank = (p * n + 99) / 100; // ceil(p * n / 100)
  rank = std::clamp<int64_t>(rank, 1, n);
  return xs[static_cast<size_t>(rank - 1)];
}

percentiles percentiles_of(std::vector<int64_t> xs) {
  percentiles out;
  out.n = static_cast<int64_t>(xs.size());
  out.p50 = percentile(xs, 50);
  out.p90 = percentile(xs, 90);
  return out;
}

std::optional<std::string> check_query(int64_t since, int64_t bucket_ms, const limits& l) {
  if (since < 0)
    return "since must be a time in ms since the epoch, 0 or more";
  if (bucket_ms <= 0 || bucket_ms % l.bucket_ms != 0)
    return "bucket_ms must be a positive multiple of " + std::to_string(l.bucket_ms);
  if (bucket_ms > l.bucket_ms * l.max_buckets)
    return "bucket_ms must be at most " + std::to_string(l.bucket_ms * l.max_buckets)
           + " (the span kept)";
  return std::nullopt;
}

report summarize(room_analytics a, int64_t now, int64_t since, int64_t bucket_ms,
                 const limits& l) {
  // The open segment counts up to now.
  if (a.seg_at != 0)
    accumulate(a, a.seg_at, now, static_cast<room_phase>(a.seg_phase), a.seg_readiness, l);
  report r;
  r.now = now;
  r.bucket_ms = bucket_ms;
  r.since = bucket_start(since, bucket_ms);
  r.base_bucket_ms = l.bucket_ms;
  r.kept_from = a.buckets.empty() ? 0 : a.buckets.front().t;
  r.revision = a.revision;
  r.phase = static_cast<room_phase>(a.seg_phase);
  r.readiness = a.seg_readiness;
  r.drop_off_ms = l.drop_off_ms;
  r.media_decay_window_ms = l.media_decay_window_ms;
  std::map<int64_t, report_bucket> out;
  std::array<int64_t, 4> intents_final{};
  int64_t intents_final_delivered = 0;
  for (auto& b : a.buckets) {
    auto t = bucket_start(b.t, bucket_ms);
    if (t < r.since)
      continue;
    auto [i, fresh] = out.try_emplace(t);
    auto& x = i->second;
    auto present = b.present_ms();
    if (present > 0) {
      if (x.present_ms == 0) {
        x.readiness_min = b.readiness_min;
        x.readiness_max = b.readiness_max;
      } else {
        x.readiness_min = std::min(x.readiness_min, b.readiness_min);
        x.readiness_max = std::max(x.readiness_max, b.readiness_max);
      }
      // Kept as the integral until all base buckets are in.
      x.readiness_mean += b.readiness_ms;
      x.present_ms += present;
    }
    if (fresh)
      x.t = t;
    for (size_t p = 1; p < x.phase_ms.size(); ++p)
      x.phase_ms[p] += b.phase_ms[p];
    x.joins += b.joins;
    x.leaves += b.leaves;
    x.left_before_ready += b.left_before_ready;
    x.left_quickly += b.left_quickly;
    x.left_before_ready_quickly += b.left_before_ready_quickly;
    for (size_t i = 0; i < intents_final.size(); ++i)
      intents_final[i] += b.intents_final[i];
    intents_final_delivered += b.intents_final_delivered;
  }
  // Samples count from what the kept buckets cover.
  auto from = std::max(r.since, r.kept_from);
  std::map<int64_t, std::array<std::vector<int64_t>, 2>> decays; // to_idle, to_away
  std::array<std::vector<int64_t>, 5> by_kind;
  r.intents = intent_report_of(intents_final, intents_final_delivered, a.intent_times, from);
  for (auto* xs : {&a.stays, &a.decays})
    for (auto& s : *xs) {
      if (s.t < from || static_cast<size_t>(s.kind) >= by_kind.size())
        continue;
      by_kind[s.kind].push_back(s.ms);
      if (s.kind == analytics_sample::stay)
        continue; // not an attention decay
      auto away = s.kind == analytics_sample::to_away
                  || s.kind == analytics_sample::to_away_after_media;
      decays[bucket_start(s.t, bucket_ms)][away ? 1 : 0].push_back(s.ms);
    }
  r.stay = percentiles_of(by_kind[analytics_sample::stay]);
  auto all = [&](uint8_t k, uint8_t after_media) {
    auto xs = by_kind[k];
    xs.insert(xs.end(), by_kind[after_media].begin(), by_kind[after_media].end());
    return percentiles_of(std::move(xs));
  };
  r.to_idle = all(analytics_sample::to_idle, analytics_sample::to_idle_after_media);
  r.to_away = all(analytics_sample::to_away, analytics_sample::to_away_after_media);
  r.to_idle_after_media = percentiles_of(by_kind[analytics_sample::to_idle_after_media]);
  r.to_away_after_media = percentiles_of(by_kind[analytics_sample::to_away_after_media]);
  for (auto& [t, x] : out) {
    x.span_ms = std::max<int64_t>(0, std::min(t + bucket_ms, now) - t);
    if (x.present_ms > 0)
      x.readiness_mean /= static_cast<double>(x.present_ms);
    x.phase_ms[0] = std::max<int64_t>(0, x.span_ms - x.present_ms);
    if (auto d = decays.find(t); d != decays.end()) {
      x.to_idle = percentiles_of(std::move(d->second[0]));
      x.to_away = percentiles_of(std::move(d->second[1]));
    }
    r.leaves += x.leaves;
    r.left_before_ready += x.left_before_ready;
    r.left_quickly += x.left_quickly;
    r.left_before_ready_quickly += x.left_before_ready_quickly;
    r.buckets.push_back(std::move(x));
  }
  for (auto& e : a.episodes)
    if (e.ended_at == 0 || e.ended_at >= r.since)
      r.episodes.push_back(e);
  return r;
}

} // namespace presence::actors::analytics
