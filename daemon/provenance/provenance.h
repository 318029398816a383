// Provenance of every verified build (docs/provenance.md): when a build succeeds and passes
// verification, its facts are gathered off the loop (the output's NAR hash from Nix, the repo's
// URL from git, the pins its files fetch), made into an in-toto statement (core/provenance) and
// written as a DSSE envelope, signed with publish.signing_key where one is set, to
// <state_dir>/provenance/<output's name>.intoto.json. Publishing copies it beside the artifact.
#pragma once

#include <string>

#include "core/config.h"
#include "core/job.h"

namespace ptbuild {

class Clock;
class OffLoop;
class Scheduler;
class Store;

std::string provenance_path(const std::string& state_dir, const std::string& out_path);

class ProvenanceWriter {
 public:
  ProvenanceWriter(Store& store, Scheduler& scheduler, OffLoop& off_loop, const Config& config)
      : store_(store), scheduler_(scheduler), off_loop_(off_loop), config_(config) {}
  void start();  // listens to the scheduler's job ends

 private:
  void on_job(const Job& job);
  Store& store_;
  Scheduler& scheduler_;
  OffLoop& off_loop_;
  const Config& config_;
};

}  // namespace ptbuild
