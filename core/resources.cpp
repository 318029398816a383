#include "core/resources.h"

#include <algorithm>
#include <charconv>
#include <limits>
#include <cmath>
#include <tuple>

#include <nlohmann/json.hpp>

#include "core/duration.h"
#include "core/text.h"

namespace ptbuild {

namespace {

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kGiB = uint64_t{1} << 30;
// An OOM-killed build needed more than it got: its next figure is half as much again.
constexpr double kOomRaise = 1.5;
// The share of a build's time that does not shorten with more cores (see seconds_at).
constexpr double kSerialShare = 0.15;
// A builder's memory is shared among builds of one size up to this part of it: the figures are
// the most of a few builds, and builds of different sizes never fill it exactly; packed to the
// last byte, the machine runs out of memory before it runs out of cores (bench/memory_sim.cpp).
constexpr double kPackTo = 0.85;
// How many of a variant's builds its figure is learned from.
constexpr size_t kLearnedFrom = 3;

std::vector<std::string_view> words_of(std::string_view line) {
  std::vector<std::string_view> out;
  while (!(line = trim(line)).empty()) {
    size_t end = line.find_first_of(" \t");
    out.push_back(line.substr(0, end));
    line = end == std::string_view::npos ? std::string_view() : line.substr(end);
  }
  return out;
}

std::optional<uint64_t> number(std::string_view s) {
  s = trim(s);
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

// "Key:   123 kB" -> 123 for the line that starts with `key`.
std::optional<uint64_t> field(std::string_view text, std::string_view key) {
  for (std::string_view line : split_lines(text)) {
    if (!line.starts_with(key)) continue;
    std::string_view rest = trim(line.substr(key.size()));
    if (rest.ends_with("kB")) rest = trim(rest.substr(0, rest.size() - 2));
    return number(rest);
  }
  return std::nullopt;
}

}  // namespace

std::string human_size(uint64_t bytes) {
  constexpr uint64_t kMiB = uint64_t{1} << 20;
  char out[32];
  if (bytes >= kGiB)
    std::snprintf(out, sizeof out, "%.1f GiB", static_cast<double>(bytes) / kGiB);
  else
    std::snprintf(out, sizeof out, "%llu MiB", static_cast<unsigned long long>((bytes + kMiB / 2) / kMiB));
  return out;
}

std::optional<std::pair<uint64_t, uint64_t>> parse_meminfo(std::string_view text) {
  auto total = field(text, "MemTotal:");
  auto available = field(text, "MemAvailable:");
  if (!total || !available) return std::nullopt;
  return std::pair{*total * kKiB, *available * kKiB};
}

std::optional<double> parse_memory_pressure(std::string_view text) {
  for (std::string_view line : split_lines(text)) {
    if (!line.starts_with("full ")) continue;
    size_t at = line.find("avg10=");
    if (at == std::string_view::npos) return std::nullopt;
    std::string value(line.substr(at + 6, line.find(' ', at) - at - 6));
    char* end = nullptr;
    double v = std::strtod(value.c_str(), &end);
    if (end == value.c_str()) return std::nullopt;
    return v;
  }
  return std::nullopt;
}

std::string remote_facts_script() {
  // kB figures, multiplied here: some awks print large products in exponent notation.
  return "grep -E '^(MemTotal|MemAvailable):' /proc/meminfo\n"
         "echo \"cores: $(nproc)\"\n"
         "df -Pk /nix/store | awk 'NR==2 {print \"store:\", $2, $4}'\n"
         "df -Pk \"${TMPDIR:-/tmp}\" | awk 'NR==2 {print \"build_dir:\", $2, $4}'\n"
         "grep '^full' /proc/pressure/memory 2>/dev/null\n"
         "nix --extra-experimental-features nix-command show-config 2>/dev/null | "
         "grep -E '^(system|extra-platforms) = '\n"
         "exit 0\n";
}

FactsOrError parse_remote_facts(std::string_view output) {
  MachineFacts f;
  auto memory = parse_meminfo(output);
  if (!memory) return {std::nullopt, "no MemTotal/MemAvailable in its /proc/meminfo"};
  std::tie(f.memory_total, f.memory_available) = *memory;
  auto cores = field(output, "cores:");
  if (!cores || *cores == 0) return {std::nullopt, "nproc did not answer"};
  f.cores = static_cast<int>(*cores);
  auto two = [&](std::string_view key) -> std::optional<std::pair<uint64_t, uint64_t>> {
    for (std::string_view line : split_lines(output)) {
      if (!line.starts_with(key)) continue;
      std::vector<std::string_view> words = words_of(line.substr(key.size()));
      if (words.size() != 2) return std::nullopt;
      auto size = number(words[0]), free = number(words[1]);
      if (!size || !free) return std::nullopt;
      return std::pair{*size * kKiB, *free * kKiB};
    }
    return std::nullopt;
  };
  auto store = two("store:");
  if (!store) return {std::nullopt, "df could not tell the free space of /nix/store"};
  std::tie(f.store_size, f.store_free) = *store;
  auto build_dir = two("build_dir:");
  f.build_dir_free = build_dir ? build_dir->second : f.store_free;
  f.pressure_full_avg10 = parse_memory_pressure(output);
  for (std::string_view line : split_lines(output))
    if (line.starts_with("system = ") || line.starts_with("extra-platforms = "))
      for (std::string_view word : words_of(line.substr(line.find('=') + 1)))
        f.nix_systems.emplace_back(word);
  return {f, ""};
}

std::string systems_not_built(const std::vector<std::string>& claimed, const MachineFacts& facts) {
  if (facts.nix_systems.empty()) return "";
  std::string missing;
  for (const std::string& s : claimed)
    if (std::find(facts.nix_systems.begin(), facts.nix_systems.end(), s) == facts.nix_systems.end())
      missing += (missing.empty() ? "" : ", ") + s;
  if (missing.empty()) return "";
  return "claims " + missing + " but its Nix builds only " + join(facts.nix_systems, ", ") +
         ": fix its systems (or that machine's extra-platforms)";
}

std::string resource_use_json(const ResourceUse& u) {
  nlohmann::json j = {{"wall_seconds", u.wall_seconds}, {"cores", u.cores}, {"measured_by", u.measured_by}};
  auto put = [&](const char* key, const auto& v) {
    j[key] = v ? nlohmann::json(*v) : nlohmann::json(nullptr);
  };
  put("peak_memory", u.peak_memory);
  put("cpu_seconds", u.cpu_seconds);
  put("output_size", u.output_size);
  put("build_dir_peak", u.build_dir_peak);
  j["oom_killed"] = u.oom_killed;
  return j.dump();
}

std::optional<ResourceUse> parse_resource_use(std::string_view text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  ResourceUse u;
  auto get = [&](const char* key, auto& out) {
    if (j.contains(key) && !j[key].is_null())
      out = j[key].get<typename std::decay_t<decltype(out)>::value_type>();
  };
  try {
    get("peak_memory", u.peak_memory);
    get("cpu_seconds", u.cpu_seconds);
    get("output_size", u.output_size);
    get("build_dir_peak", u.build_dir_peak);
    u.wall_seconds = j.value("wall_seconds", 0.0);
    u.cores = j.value("cores", 0);
    u.measured_by = j.value("measured_by", "");
    u.oom_killed = j.value("oom_killed", false);
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
  return u;
}

std::string resource_family(const VariantAxes& axes) {
  if (!axes.family) return "";
  return *axes.family + " " + (axes.cuda ? "cuda" + *axes.cuda : "cpu");
}

namespace {

// How much of the peak does not scale with the cores, where the variant's builds ran at
// different cores: the least-squares line peak = fixed + per_core · cores through them, as
// fixed / per_core (the fixed part in cores' worth; infinite when the peak does not grow with
// them). A build that compiles in parallel comes out near the default quarter; one whose memory
// is one big step (a linker, a test that loads a model) near all of it. OOM-killed builds are
// left out: their peaks are floors.
std::optional<double> learned_fixed_cores(const std::vector<PastUse>& own) {
  std::vector<std::pair<double, double>> points;  // (cores, peak)
  for (const PastUse& p : own)
    if (!p.oom_killed && p.cores > 0 && p.peak_memory > 0)
      points.emplace_back(p.cores, static_cast<double>(p.peak_memory));
  if (points.size() < 2) return std::nullopt;
  double mean_c = 0, mean_m = 0;
  for (const auto& [c, m] : points) mean_c += c / points.size(), mean_m += m / points.size();
  double spread = 0, together = 0;
  for (const auto& [c, m] : points)
    spread += (c - mean_c) * (c - mean_c), together += (c - mean_c) * (m - mean_m);
  if (spread == 0) return std::nullopt;  // all at the same cores: nothing tells the parts apart
  double per_core = together / spread;
  if (per_core <= 0) return std::numeric_limits<double>::infinity();
  return std::max(0.0, (mean_m - per_core * mean_c) / per_core);
}

double fixed_share_at(double fixed_cores, int cores) {
  return std::isinf(fixed_cores) ? 1.0 : fixed_cores / (fixed_cores + cores);
}

}  // namespace

Expectation expect_from(const std::vector<PastUse>& own, const std::vector<Expectation>& family,
                        const std::string& family_name, uint64_t default_memory) {
  if (!own.empty()) {
    Expectation e;
    std::optional<double> fixed_cores = learned_fixed_cores(own);
    const char* share_from = "its cores";
    if (!fixed_cores) {  // its builds all ran at the same cores: its family's builds may have told
      std::vector<double> kin;
      for (const Expectation& f : family)
        if (f.fixed_cores) kin.push_back(*f.fixed_cores);
      if (!kin.empty()) {
        std::nth_element(kin.begin(), kin.begin() + kin.size() / 2, kin.end());
        fixed_cores = kin[kin.size() / 2];
        share_from = "its family";
      }
    }
    size_t n = std::min(own.size(), kLearnedFrom);
    for (size_t i = 0; i < n; ++i) {
      const PastUse& p = own[i];
      Expectation one{p.oom_killed ? static_cast<uint64_t>(static_cast<double>(p.peak_memory) * kOomRaise)
                                   : p.peak_memory,
                      p.cores, p.disk, ""};
      if (fixed_cores && p.cores > 0) one.fixed_share = fixed_share_at(*fixed_cores, p.cores);
      // Compared at the cores of the newest: a build measured at 32 cores and one at 8 are
      // the same variant seen through different parallelism.
      if (i == 0) e.at_cores = p.cores;
      uint64_t at_newest = e.at_cores > 0 && one.at_cores > 0 ? memory_at(one, e.at_cores) : one.memory;
      e.memory = std::max(e.memory, at_newest);
      e.disk = std::max(e.disk, p.disk);
    }
    e.source = "measured (the most of its last " + std::to_string(n) + " build" + (n == 1 ? "" : "s");
    if (fixed_cores && e.at_cores > 0) {
      e.fixed_cores = fixed_cores;
      e.fixed_share = fixed_share_at(*fixed_cores, e.at_cores);
      e.source += "; " + std::to_string(std::lround(100 * e.fixed_share)) + "% of it fixed, learned from " +
                  share_from;
    }
    e.source += ")";
    if (own.front().oom_killed) e.source = "raised after an OOM kill";
    return e;
  }
  if (!family.empty()) {
    std::vector<Expectation> sorted = family;
    std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.memory < b.memory; });
    Expectation e = sorted[sorted.size() / 2];
    e.source = "family " + family_name + " (" + std::to_string(family.size()) + " variant" +
               (family.size() == 1 ? "" : "s") + " measured)";
    return e;
  }
  return {default_memory, 0, 0, "default (resources.default_memory)"};
}

uint64_t memory_at(const Expectation& e, int cores) {
  if (e.at_cores <= 0 || cores <= 0 || cores == e.at_cores) return e.memory;
  double scale = e.fixed_share + (1.0 - e.fixed_share) * static_cast<double>(cores) / e.at_cores;
  return static_cast<uint64_t>(std::llround(static_cast<double>(e.memory) * scale));
}

double seconds_at(const Expectation& e, int cores) {
  if (e.at_cores <= 0 || cores <= 0) return e.seconds;
  return e.seconds * (kSerialShare + (1.0 - kSerialShare) * static_cast<double>(e.at_cores) / cores);
}

uint64_t memory_total_of(const MachineFacts& f, const BuilderLimits& l) {
  return l.memory ? std::min(l.memory, f.memory_total) : f.memory_total;
}

int cores_of(const MachineFacts& f, const BuilderLimits& l) {
  return std::max(1, l.cores ? std::min(l.cores, f.cores) : f.cores);
}

uint64_t reserve_of(const MachineFacts& f, const BuilderLimits& l) {
  if (l.reserve_set) return l.reserve;
  return std::min<uint64_t>(8 * kGiB, memory_total_of(f, l) / 8);
}

uint64_t min_free_of(const MachineFacts& f, const BuilderLimits& l) {
  if (l.min_free_set) return l.min_free;
  return std::min<uint64_t>(50 * kGiB, f.store_size / 10);
}

uint64_t committed(const std::vector<RunningUse>& running) {
  uint64_t sum = 0;
  for (const RunningUse& r : running) sum += std::max(r.expected, r.current);
  return sum;
}

BuilderRoom room_of(const MachineFacts& f, const BuilderLimits& l, const std::vector<RunningUse>& running) {
  BuilderRoom room;
  room.known = true;
  uint64_t in_use = 0, still = 0;
  for (const RunningUse& r : running) {
    in_use += r.current;
    still += r.expected > r.current ? r.expected - r.current : 0;
    room.cores_taken += r.cores;
  }
  room.running = static_cast<int>(running.size());
  // Under a cap the machine's own figure does not see the cap: count ptbuild's builds against it.
  uint64_t available = f.memory_available;
  if (l.memory) available = std::min(available, l.memory > in_use ? l.memory - in_use : 0);
  uint64_t taken = reserve_of(f, l) + still;
  room.memory_free = available > taken ? available - taken : 0;
  uint64_t total = memory_total_of(f, l), reserve = reserve_of(f, l);
  room.memory_usable = total > reserve ? total - reserve : 0;
  room.free_space = std::min(f.store_free, f.build_dir_free);
  room.min_free = min_free_of(f, l);
  room.below_min_free = room.free_space < room.min_free;
  room.disk_free = room.below_min_free ? 0 : room.free_space - room.min_free;
  room.cores = cores_of(f, l);
  return room;
}

Fit fit_build(const Expectation& e, const BuilderRoom& room, const std::string& name, bool alone) {
  if (!room.known) return {0, 0, ""};  // not read yet: slots only, Nix's own cores
  if (room.below_min_free)
    return {0, 0,
            "disk: " + name + " has " + human_size(room.free_space) + " free, below its min_free of " +
                human_size(room.min_free) + " (nothing new starts there)"};
  if (e.disk > room.disk_free)
    return {0, 0,
            "disk: needs ~" + human_size(e.disk) + ", " + name + " has " + human_size(room.disk_free) +
                " above min_free"};
  bool idle = room.running == 0;
  if (alone && !idle)
    return {0, 0,
            "memory: runs alone after an OOM kill; waits for " + name + "'s " + std::to_string(room.running) +
                " build" + (room.running == 1 ? "" : "s") + " to end",
            room.cores};
  // Its share of the cores: as many as the builds of its size that the builder's memory holds
  // would each get, counted at that share (a build at 4 cores needs far less than at 32), and no
  // more builds than the queue brings. A build given all the cores of an idle machine would
  // leave the next ones one core each (measured: bench/memory_sim.cpp); one alone gets them all.
  int share = room.cores;
  if (!alone) {
    int most = room.demand > 0 ? std::min(room.demand, room.cores) : room.cores;
    int builds = 1;
    for (int n = most; n > 1 && builds == 1; --n)
      if (n * memory_at(e, std::max(1, room.cores / n)) <= room.memory_usable * kPackTo) builds = n;
    share = std::max(1, room.cores / builds);
    // At the tail of the queue a build on a sliver would end long after the rest: more cores.
    if (room.horizon_seconds > 0 && e.seconds > 0 && e.at_cores > 0)
      while (share < room.cores && seconds_at(e, share) > room.horizon_seconds) ++share;
  }
  // Started on a sliver of its share it would hold its memory many times as long (and end past
  // the horizon): it waits for half of it at least. A share of one core is shared as Nix would.
  int least = (share + 1) / 2;
  if (room.horizon_seconds > 0 && e.seconds > 0 && e.at_cores > 0)
    while (least < share && seconds_at(e, least) > room.horizon_seconds) ++least;
  int free_cores = idle ? room.cores : room.cores - room.cores_taken;
  if (share > 1 && free_cores < least)
    return {0, 0,
            "cores: its share is " + std::to_string(share) + ", " + name + " has " +
                std::to_string(std::max(0, free_cores)) + " free",
            share};
  int cores = std::max(1, std::min(share, free_cores));
  // An idle builder takes it with fewer cores where that makes it fit. Beside other builds it
  // waits instead: fewer cores save only the part of its memory that scales with them.
  if (idle)
    while (cores > 1 && memory_at(e, cores) > room.memory_free) --cores;
  // Below this a limit would only kill builds that the machine could hold: none is set.
  constexpr uint64_t kSmallestLimit = 64 << 20;
  uint64_t limit = room.memory_free >= kSmallestLimit ? room.memory_free : 0;
  if (memory_at(e, cores) <= room.memory_free || idle) return {cores, limit, ""};
  return {0, 0,
          "memory: needs ~" + human_size(memory_at(e, cores)) + ", " + name + " has " +
              human_size(room.memory_free) + " free",
          cores};
}

}  // namespace ptbuild
