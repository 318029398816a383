#include "core/fleet.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <set>
#include <sstream>
#include <utility>

#include "core/text.h"

namespace ptbuild {

namespace {
std::string comma_list(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& s : items) out += (out.empty() ? "" : ",") + s;
  return out.empty() ? "-" : out;
}

std::vector<std::string> split_commas(std::string_view field) {
  std::vector<std::string> out;
  if (field == "-") return out;
  size_t start = 0;
  while (start <= field.size()) {
    size_t comma = field.find(',', start);
    if (comma == std::string_view::npos) comma = field.size();
    if (comma > start) out.emplace_back(field.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}
}  // namespace

std::string host_of(std::string_view uri) {
  if (size_t scheme = uri.find("://"); scheme != std::string_view::npos) uri.remove_prefix(scheme + 3);
  if (size_t at = uri.rfind('@'); at != std::string_view::npos) uri.remove_prefix(at + 1);
  if (uri.starts_with('[')) {  // an IPv6 address: [::1]:22 is the builder "::1"
    size_t close = uri.find(']');
    return close == std::string_view::npos ? "" : std::string(uri.substr(1, close - 1));
  }
  if (size_t end = uri.find_first_of(":/?"); end != std::string_view::npos) uri = uri.substr(0, end);
  return std::string(uri);
}

std::string BuilderSpec::machines_line() const {
  return uri + " " + comma_list(systems) + " " + (ssh_key.empty() ? "-" : ssh_key) + " " +
         std::to_string(max_jobs) + " " +
         (speed_factor == std::floor(speed_factor) ? std::to_string(static_cast<int>(speed_factor))
                                                   : std::to_string(speed_factor)) +
         " " + comma_list(supported_features) + " " + comma_list(mandatory_features) + " " +
         (public_host_key.empty() ? "-" : public_host_key);
}

std::string BuilderSpec::store_uri() const {
  std::string out = uri;
  char sep = uri.find('?') == std::string::npos ? '?' : '&';
  if (!ssh_key.empty()) {
    out += sep + std::string("ssh-key=") + ssh_key;
    sep = '&';
  }
  if (!public_host_key.empty()) out += sep + std::string("base64-ssh-public-host-key=") + public_host_key;
  return out;
}

MachinesResult parse_machines(std::string_view text, const std::string& source) {
  std::vector<BuilderSpec> out;
  std::istringstream in{std::string(text)};
  int number = 0;
  for (std::string line; std::getline(in, line);) {
    ++number;
    if (size_t hash = line.find('#'); hash != std::string::npos) line.erase(hash);
    std::vector<std::string> f;
    std::istringstream words(line);
    for (std::string w; words >> w;) f.push_back(w);
    if (f.empty()) continue;
    std::string where = source + ":" + std::to_string(number) + ": ";
    if (f.size() > 8)
      return where + "a machine line has at most 8 fields, this one has " + std::to_string(f.size());
    auto field = [&](size_t i) -> std::string { return i < f.size() && f[i] != "-" ? f[i] : ""; };
    BuilderSpec b;
    b.line = number;
    b.uri = f[0];
    if (b.uri != "local" && !b.uri.starts_with("ssh://") && !b.uri.starts_with("ssh-ng://"))
      return where + "uri: expected ssh://, ssh-ng:// or local, got '" + b.uri + "'";
    b.name = host_of(b.uri);
    if (b.name.empty()) return where + "uri: '" + b.uri + "' names no host";
    if (std::string s = field(1); !s.empty()) b.systems = split_commas(s);
    b.ssh_key = field(2);
    if (std::string s = field(3); !s.empty()) {
      auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), b.max_jobs);
      if (ec != std::errc() || end != s.data() + s.size() || b.max_jobs < 0)
        return where + "max jobs (field 4): expected a number of slots, got '" + s + "'";
    }
    if (std::string s = field(4); !s.empty()) {
      char* end = nullptr;
      b.speed_factor = std::strtod(s.c_str(), &end);
      if (*end != '\0' || !(b.speed_factor > 0) || !std::isfinite(b.speed_factor))
        return where + "speed factor (field 5): expected a finite positive number, got '" + s + "'";
    }
    b.supported_features = split_commas(field(5));
    b.mandatory_features = split_commas(field(6));
    b.features_declared = f.size() > 5;
    b.public_host_key = field(7);
    out.push_back(std::move(b));
  }
  return out;
}

std::string fleet_problem(const std::vector<BuilderSpec>& fleet) {
  std::set<std::string> names;
  int slots = 0;
  for (const BuilderSpec& b : fleet) {
    if (!names.insert(b.name).second)
      return "two builders are named '" + b.name + "' (set name = \"…\" on one)";
    slots += b.max_jobs;
  }
  if (slots == 0)
    return "the builders have no slot between them (max_jobs = 0 on every one): nothing could build";
  return "";
}

std::vector<std::string> declared_features(std::string_view text) {
  std::vector<std::string> out;
  constexpr std::string_view kKey = "requiredSystemFeatures";
  for (size_t at = text.find(kKey); at != std::string_view::npos; at = text.find(kKey, at + 1)) {
    size_t open = text.find_first_not_of(" \t\n=", at + kKey.size());
    if (open == std::string_view::npos || text[open] != '[') continue;
    size_t close = text.find(']', open);
    if (close == std::string_view::npos) break;
    std::string_view list = text.substr(open + 1, close - open - 1);
    for (size_t q = list.find('"'); q != std::string_view::npos; q = list.find('"', q + 1)) {
      size_t end = list.find('"', q + 1);
      if (end == std::string_view::npos) break;
      std::string feature(list.substr(q + 1, end - q - 1));
      if (!contains(out, feature)) out.push_back(feature);
      q = end;
    }
  }
  return out;
}

std::string platform_of(const std::optional<std::string>& axes_platform) {
  if (!axes_platform) return "";
  if (*axes_platform == "darwin") return "aarch64-darwin";
  return *axes_platform;
}

bool can_build(const BuilderSpec& b, const BuildNeeds& needs) {
  if (!needs.system.empty() && !contains(b.systems, needs.system)) return false;
  if (b.is_local() && !b.features_declared) return true;  // Nix's own system-features decide
  for (const std::string& f : needs.features)
    if (!contains(b.supported_features, f) && !contains(b.mandatory_features, f)) return false;
  for (const std::string& f : b.mandatory_features)
    if (!contains(needs.features, f)) return false;
  return b.max_jobs > 0;
}

Placement place(const BuildNeeds& needs, const std::vector<BuilderState>& builders, const RoomCheck& room) {
  Placement p;
  double best_load = 0;
  for (size_t i = 0; i < builders.size(); ++i) {
    const BuilderState& s = builders[i];
    if (!can_build(*s.spec, needs)) continue;
    ++p.fitting;
    if (!s.up) continue;
    ++p.fitting_up;
    if (s.running >= s.spec->max_jobs) continue;
    ++p.with_slot;
    if (room)
      if (std::string short_of = room(i); !short_of.empty()) {
        if (p.short_of.empty()) p.short_of = std::move(short_of);
        continue;
      }
    double load = s.running / s.spec->speed_factor;
    if (!p.chosen) {
      p.chosen = i;
      best_load = load;
      continue;
    }
    const BuilderSpec& best = *builders[*p.chosen].spec;
    if (load < best_load || (load == best_load && s.spec->speed_factor > best.speed_factor)) {
      p.chosen = i;
      best_load = load;
    }
  }
  return p;
}

namespace {

// When a full builder's next slot frees, in seconds from now; nullopt when not known.
std::optional<double> next_slot(const BuilderState& b) {
  int over = b.running - b.spec->max_jobs;  // builds that must end before a slot frees, less one
  if (over < 0) return 0.0;
  if (static_cast<int>(b.ends.size()) < b.running) return std::nullopt;  // some end unknown
  std::vector<double> ends = b.ends;
  std::nth_element(ends.begin(), ends.begin() + over, ends.end());
  return std::max(0.0, ends[static_cast<size_t>(over)]);
}

}  // namespace

Placement place_by_finish(const BuildNeeds& needs, const std::vector<BuilderState>& builders, double seconds,
                          const RoomCheck& room) {
  Placement now = place(needs, builders, room);
  if (seconds <= 0) return now;
  double best_end = now.chosen ? seconds / builders[*now.chosen].spec->speed_factor : 0;
  std::optional<size_t> later;
  double later_end = 0, later_slot = 0;
  for (size_t i = 0; i < builders.size(); ++i) {
    const BuilderState& b = builders[i];
    if (!b.up || b.running < b.spec->max_jobs || !can_build(*b.spec, needs)) continue;
    std::optional<double> slot = next_slot(b);
    if (!slot) continue;
    double end = *slot + seconds / b.spec->speed_factor;
    if (!later || end < later_end) {
      later = i;
      later_end = end;
      later_slot = *slot;
    }
  }
  if (!later) return now;
  constexpr double kClearly = 0.05;  // of its length: estimates are not exact
  // A free slot where it ends clearly later, or none free at all (a free slot without room keeps
  // that reason): it waits for the slot where it ends first, and holds it.
  bool wait = now.chosen ? later_end < best_end - kClearly * seconds : now.with_slot == 0;
  if (wait) {
    now.chosen.reset();
    now.waits_for = later;
    now.slot_in = later_slot;
  }
  return now;
}

std::vector<std::optional<PlanSpot>> plan_slots(const std::vector<PlannedBuild>& builds,
                                                const std::vector<BuilderState>& builders, int max_steps,
                                                double* ends_in) {
  // A slot of a builder that is up: free when what runs there now ends, then its planned builds
  // one after another, in the dispatch's order.
  struct Slot {
    size_t builder;
    double speed;
    double free_at;
    double load = 0;             // when its last planned build ends, from now
    std::vector<size_t> builds;  // indexes into `builds`, ascending
  };
  std::vector<Slot> slots;
  for (size_t i = 0; i < builders.size(); ++i) {
    const BuilderState& b = builders[i];
    if (!b.up) continue;
    if (static_cast<int>(b.ends.size()) < b.running) return {};  // a running build's end is unknown
    // Its slots, each free when the build running there ends (more running than slots, after a
    // reload took some: the one that frees first holds the rest too).
    std::vector<double> free_at(static_cast<size_t>(std::max(0, b.spec->max_jobs)), 0.0);
    for (double end : b.ends)
      if (!free_at.empty()) {
        double& least = *std::min_element(free_at.begin(), free_at.end());
        least = std::max(least, end);
      }
    for (double at : free_at) slots.push_back({i, b.spec->speed_factor, at, at, {}});
  }
  std::vector<std::optional<PlanSpot>> plan(builds.size());
  if (slots.empty()) return plan;
  for (const PlannedBuild& b : builds)
    if (b.seconds <= 0) return {};
  auto takes = [&](const Slot& s, size_t k) { return can_build(*builders[s.builder].spec, builds[k].needs); };
  auto on = [&](const Slot& s, size_t k) { return builds[k].seconds / std::max(0.01, s.speed); };
  auto add = [&](Slot& s, size_t k) {
    s.builds.insert(std::lower_bound(s.builds.begin(), s.builds.end(), k), k);
    s.load += on(s, k);
  };
  auto drop = [&](Slot& s, size_t k) {
    s.builds.erase(std::find(s.builds.begin(), s.builds.end(), k));
    s.load -= on(s, k);
  };
  // The last plan again, where its builders are still up and take its builds: each builder's
  // builds in the order they were to start, each on its slot that frees first. Planned from
  // nothing at each dispatch, another of the plan's local optima is found each time, and the
  // builds run to none of them.
  std::vector<bool> placed(builds.size(), false);
  std::vector<size_t> again;
  for (size_t k = 0; k < builds.size(); ++k)
    if (builds[k].planned_on) again.push_back(k);
  std::stable_sort(again.begin(), again.end(),
                   [&](size_t a, size_t b) { return builds[a].planned_in < builds[b].planned_in; });
  for (size_t k : again) {
    Slot* first = nullptr;
    for (Slot& s : slots)
      if (s.builder == *builds[k].planned_on && takes(s, k) && (!first || s.load < first->load)) first = &s;
    if (!first) continue;
    add(*first, k);
    placed[k] = true;
  }
  // The others in the dispatch's order, each on the slot where it ends first: after the builds
  // before it in that order, so a build of higher priority goes ahead of those planned already.
  auto ends_on = [&](const Slot& s, size_t k) {
    double end = s.free_at + on(s, k);
    for (size_t x : s.builds)
      if (x < k) end += on(s, x);
    return end;
  };
  for (size_t k = 0; k < builds.size(); ++k) {
    if (placed[k]) continue;
    Slot* best = nullptr;
    for (Slot& s : slots)
      if (takes(s, k) && (!best || ends_on(s, k) < ends_on(*best, k))) best = &s;
    if (best) add(*best, k);
  }
  // Moves and swaps off the slot that ends last, while it ends sooner.
  for (int step = 0; step < max_steps; ++step) {
    Slot& top = *std::max_element(slots.begin(), slots.end(),
                                  [](const Slot& a, const Slot& b) { return a.load < b.load; });
    bool moved = false;
    for (size_t i = 0; i < top.builds.size() && !moved; ++i) {
      size_t k = top.builds[i];
      for (Slot& other : slots) {
        if (&other == &top || !takes(other, k)) continue;
        if (std::max(top.load - on(top, k), other.load + on(other, k)) < top.load - 1e-6) {
          drop(top, k), add(other, k);
          moved = true;
          break;
        }
        for (size_t x : other.builds) {
          if (!takes(top, x)) continue;
          double here = top.load - on(top, k) + on(top, x), there = other.load - on(other, x) + on(other, k);
          if (std::max(here, there) < top.load - 1e-6) {
            drop(top, k), drop(other, x), add(top, x), add(other, k);
            moved = true;
            break;
          }
        }
        if (moved) break;
      }
    }
    if (!moved) break;
  }
  for (const Slot& s : slots) {
    double at = s.free_at;
    for (size_t k : s.builds) {
      plan[k] = PlanSpot{s.builder, at};
      at += on(s, k);
    }
    if (ends_in) *ends_in = std::max(*ends_in, s.load);
  }
  return plan;
}

Placement place_by_plan(const BuildNeeds& needs, const std::vector<BuilderState>& builders, double seconds,
                        std::optional<PlanSpot> planned, const RoomCheck& room) {
  if (planned && planned->builder < builders.size()) {
    const BuilderState& b = builders[planned->builder];
    // Placed or waiting, it needs no reason: only the builder is asked for room, once.
    Placement p;
    // Its turn: the plan starts it now (its slot is free) and the builder has a slot free.
    bool turn_now = planned->starts_in < 1 && b.running < b.spec->max_jobs;
    if (b.up && can_build(*b.spec, needs)) {
      if (turn_now && (!room || room(planned->builder).empty())) {
        p.chosen = planned->builder;
        return p;
      }
      if (!turn_now)
        if (std::optional<double> slot = next_slot(b)) {
          p.waits_for = planned->builder;
          p.slot_in = std::max(*slot, planned->starts_in);
          p.planned = true;
          return p;
        }
    }
  }
  return place_by_finish(needs, builders, seconds, room);
}

void hold_next_slot(BuilderState& b, double seconds) {
  std::optional<double> slot = next_slot(b);
  if (b.running >= b.spec->max_jobs && slot) {
    // The build that frees the slot is replaced by this one's end (unknown: no end at all).
    auto first = std::min_element(b.ends.begin(), b.ends.end());
    if (seconds > 0)
      *first = *slot + seconds / b.spec->speed_factor;
    else
      b.ends.erase(first);
    return;
  }
  ++b.running;
  // A build of unknown length leaves the builder's next slot unknown too.
  if (seconds > 0) b.ends.push_back(slot.value_or(0) + seconds / b.spec->speed_factor);
}

std::optional<double> first_end(const BuilderState& b) {
  if (b.running == 0 || static_cast<int>(b.ends.size()) < b.running) return std::nullopt;
  return std::max(0.0, *std::min_element(b.ends.begin(), b.ends.end()));
}

std::optional<size_t> KeptBuilders::keep(int64_t job, size_t position, const std::vector<Fit>& fits,
                                         const std::vector<BuilderRoom>& rooms,
                                         const std::vector<BuilderState>& states) {
  std::optional<size_t> best;
  std::optional<double> best_end;
  auto free_cores = [&](size_t i) { return rooms[i].cores - rooms[i].cores_taken; };
  for (size_t i = 0; i < fits.size(); ++i) {
    std::optional<double> end = first_end(states[i]);
    if (fits[i].waits_for_cores == 0 || kept_[i] || !end) continue;
    if (!best || free_cores(i) > free_cores(*best) ||
        (free_cores(i) == free_cores(*best) && rooms[i].memory_free > rooms[*best].memory_free)) {
      best = i;
      best_end = end;
    }
  }
  if (best) kept_[*best] = Kept{job, position, *best_end};
  return best;
}

const KeptBuilders::Kept* KeptBuilders::keeps_out(size_t i, size_t position, double seconds) const {
  const std::optional<Kept>& k = kept_[i];
  if (!k || k->after >= position || (seconds > 0 && seconds <= k->until)) return nullptr;
  return &*k;
}

std::string describe_unplaced(const BuildNeeds& needs, const Placement& p) {
  if (p.fitting == 0) {
    std::string what = needs.system.empty() ? "this build" : needs.system;
    if (!needs.features.empty()) what += " with " + join(needs.features, ",");
    return "no builder for " + what + ": none of the configured builders can ever take it";
  }
  if (p.fitting_up == 0)
    return "no builder up (" + std::to_string(p.fitting) +
           (p.fitting == 1 ? " builder fits" : " builders fit") + ", all down or disabled)";
  if (p.with_slot > 0 && !p.short_of.empty()) return p.short_of;
  return "no free slot (" + std::to_string(p.fitting) +
         (p.fitting == 1 ? " builder fits)" : " builders fit)");
}

}  // namespace ptbuild
