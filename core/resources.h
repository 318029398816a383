// Memory, cores and disk as the scheduler counts them (docs/resources.md). Pure: the daemon reads
// the machines (daemon/resources/) and the store keeps what builds used; this file decides what a
// build is expected to take, whether it fits a builder, and with how many cores.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/variant.h"

namespace ptbuild {

// What a machine has, as read from it (/proc/meminfo, nproc, statvfs, /proc/pressure/memory).
struct MachineFacts {
  uint64_t memory_total = 0;
  uint64_t memory_available = 0;
  int cores = 0;
  uint64_t store_free = 0;                    // of the file system of /nix/store
  uint64_t store_size = 0;                    // its size (the default min_free is a share of it)
  uint64_t build_dir_free = 0;                // of the file system builds run in (TMPDIR, else /tmp)
  std::optional<double> pressure_full_avg10;  // PSI memory "full" avg10, %; absent where the kernel has none
  std::vector<std::string> nix_systems;       // what its Nix builds (system, extra-platforms); empty: unknown
};

// Why a builder cannot build all the systems it claims ("claims aarch64-linux but its Nix builds
// only x86_64-linux: …"), or "" when it can, or when its Nix did not say.
std::string systems_not_built(const std::vector<std::string>& claimed, const MachineFacts& facts);

// "37.5 GiB", "600 MiB": a figure people read.
std::string human_size(uint64_t bytes);

// /proc/meminfo -> (MemTotal, MemAvailable) in bytes; nullopt when either is missing.
std::optional<std::pair<uint64_t, uint64_t>> parse_meminfo(std::string_view text);
// /proc/pressure/memory -> the "full" line's avg10.
std::optional<double> parse_memory_pressure(std::string_view text);

// The shell script a remote builder runs over ssh to tell its facts (POSIX sh, coreutils), and
// the reading of its answer; an error names what was missing.
std::string remote_facts_script();
struct FactsOrError {
  std::optional<MachineFacts> facts;
  std::string error;
};
FactsOrError parse_remote_facts(std::string_view output);

// What the operator allows of a builder ([[builder]] memory, cores, min_free, reserve).
struct BuilderLimits {
  uint64_t memory = 0;    // cap; 0: all the machine has
  int cores = 0;          // cap; 0: all
  uint64_t min_free = 0;  // 0: the default, 50 GiB or a tenth of the store's file system
  uint64_t reserve = 0;   // 0: the default, 8 GiB or an eighth of the memory
  bool min_free_set = false;
  bool reserve_set = false;
};

// What a build used, where Nix ran it (docs/resources.md): bytes and seconds, absent when the
// way it was measured cannot tell. `measured_by` says how ("cgroup-v2", "cgroup-v1", …).
struct ResourceUse {
  std::optional<uint64_t> peak_memory;
  std::optional<double> cpu_seconds;
  double wall_seconds = 0;
  std::optional<uint64_t> output_size;
  std::optional<uint64_t> build_dir_peak;
  int cores = 0;  // the cores it was given (NIX_BUILD_CORES)
  std::string measured_by;
  bool oom_killed = false;  // the kernel killed a process of it for memory
};
std::string resource_use_json(const ResourceUse& use);
std::optional<ResourceUse> parse_resource_use(std::string_view json);

// A variant's expected peak memory (at `at_cores` cores) and disk use, and where the figure
// comes from, said the way `why` and `show` print it.
struct Expectation {
  uint64_t memory = 0;
  int at_cores = 0;  // 0: not known at how many (a default): the figure is taken as is
  uint64_t disk = 0;
  std::string source;  // "measured (last 3 builds)", "family pytorch cuda13_0", "default"
  double seconds = 0;  // how long it took at `at_cores` (0: not known)
  // The part of `memory` that does not scale with the cores (memory_at): a quarter, unless the
  // variant's own builds at different cores, or its family's, showed another.
  double fixed_share = 0.25;
  // Where its builds showed it: the fixed part in cores' worth of the rest (infinite: it does
  // not grow with the cores), which a variant of the same family may borrow.
  std::optional<double> fixed_cores;
};

// What the store remembers of a variant's recent builds, newest first.
struct PastUse {
  uint64_t peak_memory = 0;
  int cores = 0;
  uint64_t disk = 0;        // output size + build dir peak, where measured
  bool oom_killed = false;  // its peak is a floor: the build needed more
};

// The family a never-built variant borrows its figure from: the same package family, CUDA
// version (or cpu) and architecture count.
std::string resource_family(const VariantAxes& axes);

// The expectation from a variant's past (the most it used over its last 3 builds, raised by half
// above a peak that was OOM-killed; its fixed share learned from all of `own` where they ran at
// different cores, else its family's), else its family's (the median of their expectations),
// else the default.
Expectation expect_from(const std::vector<PastUse>& own, const std::vector<Expectation>& family,
                        const std::string& family_name, uint64_t default_memory);

// The peak at `cores` cores: its fixed share does not depend on them (the compilers' common
// part, the linker), the rest scales with how many compile at once.
uint64_t memory_at(const Expectation& e, int cores);
// How long it takes at `cores`: a part of a build does not go faster with more (configure, the
// linker, Python's own steps), the rest does. An assumption (docs/resources.md), as memory_at's.
double seconds_at(const Expectation& e, int cores);

// A builder's room at one dispatch.
struct BuilderRoom {
  bool known = false;          // its facts were read (else only slots count)
  uint64_t memory_free = 0;    // available − reserve − what its builds are still expected to take
  uint64_t memory_usable = 0;  // all of it for builds: total (within the cap) − reserve
  uint64_t disk_free = 0;      // store free − min_free (0 when below it)
  bool below_min_free = false;
  uint64_t free_space = 0;  // of its store, for the reason
  uint64_t min_free = 0;
  int cores = 1;        // what it has (capped)
  int cores_taken = 0;  // given to the builds running there
  int running = 0;
  // The builds it may hold soon: those running plus its part of the queue still to place
  // (0: not counted, as many as its memory holds). Few left, bigger shares: the tail's builds
  // do not keep a sliver of the cores while the machine empties.
  int demand = 0;
  // When the work the fleet still has should be done, from now (0: not counted): a build given
  // so few cores that it would run past it gets more, or the matrix waits for it alone.
  double horizon_seconds = 0;
};

// A build running on a builder, as its room counts it.
struct RunningUse {
  uint64_t expected = 0;  // its expected peak at the cores it was given
  uint64_t current = 0;   // what it uses now, where measured (0: not known)
  int cores = 0;
};

// The room of a builder whose facts are known: available memory (within the operator's cap,
// less what ptbuild's own builds use under it) less the reserve and less what the builds there
// are still expected to take; free space above min_free.
BuilderRoom room_of(const MachineFacts& facts, const BuilderLimits& limits,
                    const std::vector<RunningUse>& running);
// The memory and cores of a machine within the operator's caps.
uint64_t memory_total_of(const MachineFacts& facts, const BuilderLimits& limits);
int cores_of(const MachineFacts& facts, const BuilderLimits& limits);
// The defaults when the operator set none: 8 GiB or an eighth of the memory; 50 GiB or a
// tenth of the store's file system.
uint64_t reserve_of(const MachineFacts& facts, const BuilderLimits& limits);
uint64_t min_free_of(const MachineFacts& facts, const BuilderLimits& limits);
// What the builds there hold or are expected to: Σ max(expected, current).
uint64_t committed(const std::vector<RunningUse>& running);

struct Fit {
  int cores = 0;              // the cores to give it (0: Nix's own setting, the builder's room unknown)
  uint64_t memory_limit = 0;  // what the kernel lets it use where ptbuild runs it (0: no limit)
  std::string why_not;        // "memory: needs ~38 GiB, gpu-box has 21 GiB free"; "" when it fits
  // Where it waits for cores or memory: the cores it waits for (all of them to run alone), so
  // that the builder may be kept for it (KeptBuilders).
  int waits_for_cores = 0;
};

// Whether a build with this expectation fits `room` (on builder `name`), and with how many
// cores: its share (the builder's cores divided among as many builds of its size as its memory
// holds at that share, or as the demand brings if fewer; all of them when it runs alone), at
// most those free, fewer where that makes it fit. An idle
// builder takes a build that does not fit even so — alone, with as few cores as it can — or it
// would never run anywhere; `alone` asks for an idle builder.
Fit fit_build(const Expectation& e, const BuilderRoom& room, const std::string& name, bool alone);

}  // namespace ptbuild
