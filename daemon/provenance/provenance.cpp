#include "daemon/provenance/provenance.h"
#include "core/protocol.h"

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "core/backend.h"
#include "core/hash.h"
#include "core/provenance.h"
#include "core/text.h"
#include "daemon/command.h"
#include "daemon/nightly/fingerprint.h"
#include "daemon/runner/off_loop.h"
#include "daemon/scheduler/scheduler.h"
#include "daemon/store/store.h"
#include "local/files.h"

namespace ptbuild {

namespace {

constexpr auto kCommandTimeout = std::chrono::seconds(60);

std::map<std::string, std::string> axes_of(const VariantAxes& a) {
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : {std::pair{"family", a.family},
                                   {"python", a.python},
                                   {"cuda", a.cuda},
                                   {"gpu_arch", a.gpu_arch},
                                   {"isa", a.isa},
                                   {"extra", a.extra},
                                   {"platform", a.platform}})
    if (value) out[key] = *value;
  return out;
}

// The facts Nix and git know, the statement, the envelope and its file; "" or what went wrong.
std::string write_provenance(ProvenanceFacts facts, const std::string& repo_path, const std::string& nix,
                             const std::string& signing_key, const std::string& file) {
  CommandResult info = run_command(
      {nix, "--extra-experimental-features", "nix-command", "path-info", "--json", facts.out_path}, "/",
      kCommandTimeout);
  nlohmann::json paths = nlohmann::json::parse(info.out, nullptr, false);
  std::string nar = paths.is_array() && !paths.empty() ? paths[0].value("narHash", "") : "";
  std::optional<ParsedHash> hash = parse_hash(nar);
  if (!info.ok() || !hash)
    return "nix path-info " + facts.out_path + " gave no NAR hash: " + std::string(trim(info.err));
  facts.nar_hash_hex = format_hash(hash->hash, HashSpelling::hex);
  CommandResult url = run_command({"git", "-C", repo_path, "config", "--get", "remote.origin.url"}, repo_path,
                                  kCommandTimeout);
  facts.repo_url = url.ok() && !trim(url.out).empty() ? std::string(trim(url.out)) : repo_path;
  facts.nix_version = std::string(trim(run_command({nix, "--version"}, "/", kCommandTimeout).out));
  for (const auto& [path, text] : files_read(repo_path, facts.recipe))
    for (const std::string& pin : pinned_urls(text))
      if (std::find(facts.pins.begin(), facts.pins.end(), pin) == facts.pins.end()) facts.pins.push_back(pin);
  std::optional<NixKey> key;
  if (!signing_key.empty()) {
    std::string error;
    std::optional<std::string> text = read_file(signing_key);
    key = text ? parse_nix_key(*text, true, error) : std::nullopt;
    if (!key) return "publish.signing_key " + signing_key + ": " + (text ? error : "cannot be read");
  }
  nlohmann::json envelope = sign_envelope(protocol::json_text(provenance_statement(facts)), key);
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(file).parent_path(), ec);
  std::string partial = file + ".partial";
  {
    std::ofstream out(partial, std::ios::trunc);
    out << protocol::json_text(envelope) << "\n";
    if (!out.flush()) return "cannot write " + partial;
  }
  std::filesystem::rename(partial, file, ec);  // whole or not at all
  return ec ? "cannot write " + file + ": " + ec.message() : "";
}

}  // namespace

std::string provenance_path(const std::string& state_dir, const std::string& out_path) {
  return state_dir + "/provenance/" + std::filesystem::path(out_path).filename().string() + ".intoto.json";
}

void ProvenanceWriter::start() {
  scheduler_.follow_jobs([this](const Job& job) { on_job(job); });
}

void ProvenanceWriter::on_job(const Job& job) {
  if (job.kind != JobKind::build || job.state != JobState::succeeded || !job.out_path || !job.verify_json)
    return;
  nlohmann::json verify = nlohmann::json::parse(*job.verify_json, nullptr, false);
  if (!verify.is_object() || verify.value("ok", false) != true) return;  // verified builds only
  std::optional<VariantRecord> v = store_.variant(job.variant);
  if (!v) return;
  ProvenanceFacts f;
  f.out_path = *job.out_path;
  f.commit = job.commit;
  f.recipe = v->recipe;
  f.variant = job.variant;
  f.axes = axes_of(v->axes);
  f.drv_path = job.drv_path;
  f.backend = config_.backend.kind;
  f.ptbuild_version = PTBUILD_VERSION;
  f.builder = job.builder.value_or("local");
  f.job = job.id;
  f.started_at = job.started_at.value_or("");
  f.finished_at = job.finished_at.value_or("");
  f.verify_json = job.verify_json;
  off_loop_.run(
      [f = std::move(f), repo = v->repo_path, nix = nix_program(config_.backend),
       key = config_.publish.signing_key, file = provenance_path(config_.daemon.state_dir, *job.out_path)] {
        return write_provenance(f, repo, nix, key, file);
      },
      [id = job.id](const std::string& error) {
        if (!error.empty()) spdlog::warn("job #{}: no provenance: {}", id, error);
      });
}

}  // namespace ptbuild
