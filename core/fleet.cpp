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

std::vector<std::optional<size_t>> plan_slots(const std::vector<PlannedBuild>& builds,
                                              const std::vector<BuilderState>& builders, int max_steps,
                                              double* ends_in) {
  // A builder as the plan sees it: its slots, each free when what runs there now ends, and the
  // builds planned on it. The plan is judged as the dispatch will run it: a builder starts its
  // planned builds in the dispatch's order, each on the slot that frees first. (Judged slot by
  // slot instead, the plan promised an order no dispatch keeps, and the fleet ended later than it.)
  struct Machine {
    size_t builder;
    double speed;
    std::vector<double> free_at;
    std::vector<size_t> builds;  // indexes into `builds`, ascending: the dispatch's order
    double end = 0;              // when its last build ends, from now
  };
  std::vector<Machine> machines;
  for (size_t i = 0; i < builders.size(); ++i) {
    const BuilderState& b = builders[i];
    if (!b.up) continue;
    if (static_cast<int>(b.ends.size()) < b.running) return {};  // a running build's end is unknown
    if (b.spec->max_jobs <= 0) continue;
    // More running than slots, after a reload took some: the slot that frees first holds the rest.
    std::vector<double> free_at(static_cast<size_t>(b.spec->max_jobs), 0.0);
    for (double end : b.ends) {
      double& least = *std::min_element(free_at.begin(), free_at.end());
      least = std::max(least, end);
    }
    machines.push_back({i, b.spec->speed_factor, free_at, {}, 0});
  }
  std::vector<std::optional<size_t>> plan(builds.size());
  if (machines.empty()) return plan;
  for (const PlannedBuild& b : builds)
    if (b.seconds <= 0) return {};
  auto takes = [&](const Machine& m, size_t k) {
    return can_build(*builders[m.builder].spec, builds[k].needs);
  };
  auto on = [&](const Machine& m, size_t k) { return builds[k].seconds / std::max(0.01, m.speed); };
  // The search is bounded by the builds its judging starts, not only by moves: on the event loop,
  // a few milliseconds a dispatch. Each plan starts from the last, so the next one goes on.
  constexpr size_t kMostStarts = 1'000'000;
  size_t starts = 0;
  // When machine m's last build ends with its builds, less `without`, plus `with`, run in order.
  std::vector<double> slots;
  auto end_of = [&](const Machine& m, std::optional<size_t> without, std::optional<size_t> with) {
    starts += m.builds.size() + 1;
    slots = m.free_at;
    auto start = [&](size_t k) { *std::min_element(slots.begin(), slots.end()) += on(m, k); };
    for (size_t k : m.builds) {
      if (with && *with < k) start(*std::exchange(with, std::nullopt));
      if (k != without) start(k);
    }
    if (with) start(*with);
    return *std::max_element(slots.begin(), slots.end());
  };
  auto add = [](Machine& m, size_t k) {
    m.builds.insert(std::lower_bound(m.builds.begin(), m.builds.end(), k), k);
  };
  auto drop = [](Machine& m, size_t k) { m.builds.erase(std::find(m.builds.begin(), m.builds.end(), k)); };
  // Each build in order where it ends first; the last plan's builder, where it still takes it: a
  // plan made again from nothing at each dispatch finds another of its local optima each time, and
  // the builds run to none of them.
  std::vector<std::vector<double>> loads;
  for (const Machine& m : machines) loads.push_back(m.free_at);
  auto starts_at = [&](size_t mi) { return *std::min_element(loads[mi].begin(), loads[mi].end()); };
  for (size_t k = 0; k < builds.size(); ++k) {
    std::optional<size_t> best;
    for (size_t mi = 0; mi < machines.size(); ++mi)
      if (builds[k].planned_on == machines[mi].builder && takes(machines[mi], k)) best = mi;
    if (!best)
      for (size_t mi = 0; mi < machines.size(); ++mi)
        if (takes(machines[mi], k) &&
            (!best || starts_at(mi) + on(machines[mi], k) < starts_at(*best) + on(machines[*best], k)))
          best = mi;
    if (!best) continue;
    *std::min_element(loads[*best].begin(), loads[*best].end()) += on(machines[*best], k);
    machines[*best].builds.push_back(k);
  }
  for (Machine& m : machines) m.end = end_of(m, std::nullopt, std::nullopt);
  // Moves and swaps off the builder that ends last, while it ends sooner.
  for (int step = 0; step < max_steps && starts < kMostStarts; ++step) {
    Machine& top = *std::max_element(machines.begin(), machines.end(),
                                     [](const Machine& a, const Machine& b) { return a.end < b.end; });
    bool moved = false;
    for (size_t i = 0; i < top.builds.size() && !moved && starts < kMostStarts; ++i) {
      size_t k = top.builds[i];
      double without = end_of(top, k, std::nullopt);
      for (Machine& other : machines) {
        if (&other == &top || !takes(other, k)) continue;
        double there = end_of(other, std::nullopt, k);
        if (std::max(without, there) < top.end - 1e-6) {
          top.end = without, other.end = there;
          drop(top, k), add(other, k);
          moved = true;
          break;
        }
        for (size_t x : other.builds) {  // a shorter one back: less work on the builder that ends last
          if (builds[x].seconds >= builds[k].seconds || !takes(top, x)) continue;
          double here = end_of(top, k, x);
          there = end_of(other, x, k);
          if (std::max(here, there) < top.end - 1e-6) {
            top.end = here, other.end = there;
            drop(top, k), add(top, x), drop(other, x), add(other, k);
            moved = true;
            break;
          }
        }
        if (moved) break;
      }
    }
    if (!moved) break;
  }
  for (const Machine& m : machines) {
    for (size_t k : m.builds) plan[k] = m.builder;
    if (ends_in) *ends_in = std::max(*ends_in, m.end);
  }
  return plan;
}

Placement place_by_plan(const BuildNeeds& needs, const std::vector<BuilderState>& builders, double seconds,
                        std::optional<size_t> planned, const RoomCheck& room) {
  if (planned && *planned < builders.size()) {
    const BuilderState& b = builders[*planned];
    // Placed or waiting, it needs no reason: only the builder is asked for room, once.
    Placement p;
    if (b.up && can_build(*b.spec, needs) && b.running < b.spec->max_jobs &&
        (!room || room(*planned).empty())) {
      p.chosen = planned;
      return p;
    }
    if (b.up && can_build(*b.spec, needs) && b.running >= b.spec->max_jobs)
      if (std::optional<double> slot = next_slot(b)) {
        p.waits_for = planned;
        p.slot_in = *slot;
        p.planned = true;
        return p;
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
