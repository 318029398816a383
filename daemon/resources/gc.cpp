#include "daemon/resources/gc.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "core/text.h"
#include "daemon/command.h"

namespace ptbuild {

namespace {

constexpr auto kGcTimeout = std::chrono::hours(2);
constexpr size_t kPathsPerQuery = 500;
std::atomic<uint64_t> freed_total{0};

// Its non-empty lines, owned.
std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  for (std::string_view line : split_lines(text))
    if (!line.empty()) out.emplace_back(line);
  return out;
}

std::string first_line(const CommandResult& r) {
  std::string text = r.err.empty() ? r.out : r.err;
  return std::string(trim(text.substr(0, text.find('\n'))));
}

// The NAR size of each path still in the store (nix-store -q --size), asked in batches.
std::map<std::string, uint64_t> sizes_of(const std::string& nix_store,
                                         const std::vector<std::string>& paths) {
  std::map<std::string, uint64_t> out;
  for (size_t at = 0; at < paths.size(); at += kPathsPerQuery) {
    std::vector<std::string> argv{nix_store, "-q", "--size"};
    std::vector<std::string> batch;
    for (size_t i = at; i < std::min(paths.size(), at + kPathsPerQuery); ++i)
      if (std::filesystem::exists(paths[i])) batch.push_back(paths[i]);
    if (batch.empty()) continue;
    argv.insert(argv.end(), batch.begin(), batch.end());
    CommandResult r = run_command(argv, "/", std::chrono::seconds(300));
    std::vector<std::string> sizes = lines_of(r.out);
    if (!r.ok() || sizes.size() != batch.size()) continue;  // a path gone meanwhile: sizes unknown
    for (size_t i = 0; i < batch.size(); ++i) out[batch[i]] = std::stoull(sizes[i]);
  }
  return out;
}

}  // namespace

std::string nix_store_program(const std::string& nix) {
  return nix.ends_with("nix") ? nix + "-store" : "nix-store";
}

std::string add_build_root(const std::string& nix_store, const std::string& roots_dir, int64_t job,
                           const std::string& out) {
  std::error_code ec;
  std::filesystem::create_directories(roots_dir, ec);
  std::string root = roots_dir + "/" + std::to_string(job);
  CommandResult r = run_command({nix_store, "--add-root", root, "--indirect", "--realise", out}, "/");
  return r.ok() ? "" : "cannot root " + out + ": " + first_line(r);
}

protocol::GcReply collect_garbage(const std::string& nix_store, const std::string& roots_dir,
                                  const GcPlan& plan, uint64_t max_free, bool dry_run) {
  protocol::GcReply reply;
  reply.dry_run = dry_run;
  reply.kept = static_cast<int64_t>(plan.keep.size());
  std::vector<std::string> outs;
  for (const GcBuild& b : plan.drop) outs.push_back(b.out_path);
  std::map<std::string, uint64_t> sizes = sizes_of(nix_store, outs);
  for (const GcBuild& b : plan.drop) {
    reply.dropped.push_back({b.job, b.variant, b.out_path, sizes.count(b.out_path) ? sizes[b.out_path] : 0});
    if (!dry_run && ::unlink((roots_dir + "/" + std::to_string(b.job)).c_str()) != 0 && errno != ENOENT)
      throw std::runtime_error("cannot remove the GC root of job #" + std::to_string(b.job) + ": " +
                               std::strerror(errno));
  }
  if (dry_run) {
    CommandResult dead = run_command({nix_store, "--gc", "--print-dead"}, "/", std::chrono::seconds(600));
    if (!dead.ok()) throw std::runtime_error("nix-store --gc --print-dead: " + first_line(dead));
    std::vector<std::string> paths = lines_of(dead.out);
    reply.dead_paths = static_cast<int64_t>(paths.size());
    for (const auto& [path, size] : sizes_of(nix_store, paths)) reply.dead_bytes += size;
    return reply;
  }
  CommandResult gc = run_command({nix_store, "--gc", "--max-freed", std::to_string(max_free)}, "/",
                                 std::chrono::duration_cast<std::chrono::seconds>(kGcTimeout));
  if (!gc.ok()) throw std::runtime_error("nix-store --gc: " + first_line(gc));
  if (std::optional<GcSummary> done = parse_gc_summary(gc.err + gc.out)) {
    reply.dead_paths = done->paths;
    reply.freed_bytes = done->bytes;
  }
  freed_total += reply.freed_bytes;
  return reply;
}

GcOutcome try_collect_garbage(const std::string& nix_store, const std::string& roots_dir, const GcPlan& plan,
                              uint64_t max_free, bool dry_run) {
  try {
    return {collect_garbage(nix_store, roots_dir, plan, max_free, dry_run), ""};
  } catch (const std::exception& e) {
    return {std::nullopt, e.what()};
  }
}

void count_freed(uint64_t bytes) {
  freed_total += bytes;
}

uint64_t gc_freed_total() {
  return freed_total.load();
}

}  // namespace ptbuild
