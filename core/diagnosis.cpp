#include "core/diagnosis.h"

#include <array>
#include <cstring>

#include "core/progress.h"

namespace ptbuild {
namespace {

constexpr size_t kContextBefore = 3;
constexpr int kContextAfter = 4;
constexpr size_t kMaxLineInExcerpt = 400;

// glibc's memmem: several times faster than a naive search on long logs.
bool contains(std::string_view haystack, std::string_view needle) {
  return ::memmem(haystack.data(), haystack.size(), needle.data(), needle.size()) != nullptr;
}

// "USE_CUDA              : OFF" as PyTorch's CMake summary prints it.
bool use_cuda_off(std::string_view line) {
  size_t at = line.find("USE_CUDA");
  if (at == line.npos) return false;
  std::string_view rest = line.substr(at + 8);
  size_t i = 0;
  while (i < rest.size() && rest[i] == ' ') ++i;
  if (i >= rest.size() || rest[i] != ':') return false;
  ++i;
  while (i < rest.size() && rest[i] == ' ') ++i;
  return rest.substr(i).starts_with("OFF") || rest.substr(i).starts_with("0");
}

std::string clip(std::string_view s) {
  std::string out(s.substr(0, kMaxLineInExcerpt));
  if (s.size() > kMaxLineInExcerpt) out += "…";
  return out;
}

std::string join_lines(const std::deque<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += (out.empty() ? "" : "\n") + l;
  return out;
}

void clip_into(std::string& out, std::string_view s) {
  out.assign(s.substr(0, kMaxLineInExcerpt));
  if (s.size() > kMaxLineInExcerpt) out += "…";
}

// Every signature of match() contains one of these: a line with none of them is an ordinary
// build line (nearly all of a 200 MB log), passed over without the dozens of searches below.
bool may_match(std::string_view line) {
  static constexpr std::string_view kTriggers[] = {"rror",
                                                   "NOT find CUDA",
                                                   "CUDA cannot",
                                                   "USE_CUDA",
                                                   "Unknown CUDA",
                                                   "Unsupported gpu",
                                                   "Killed signal",
                                                   "due to signal",
                                                   "memory exhausted",
                                                   "bad_alloc",
                                                   "allocate memory",
                                                   "No space left",
                                                   "hash mismatch",
                                                   "unable to download",
                                                   "resolve host",
                                                   "name resolution",
                                                   "Connection",
                                                   "cannot download",
                                                   "SSL connect",
                                                   "unreachable",
                                                   "unable to access",
                                                   "build-users-group",
                                                   "executing '",
                                                   "cannot connect",
                                                   "cannot open connection",
                                                   "Permission denied",
                                                   "not permitted",
                                                   "Read-only file",
                                                   "readonly database",
                                                   "tracked by git",
                                                   "ssh: ",
                                                   "cannot build on",
                                                   "Failed to find a machine",
                                                   "but I am a",
                                                   "file to patch",
                                                   "Hunk #",
                                                   "file INSTALL"};
  for (std::string_view t : kTriggers)
    if (contains(line, t)) return true;
  return false;
}

// The part of a line after Nix's "name> " prefix, trimmed.
std::string_view message_of(std::string_view line) {
  size_t prefix = line.find("> ");
  if (prefix != line.npos && prefix < 80 && line.substr(0, prefix).find(' ') == line.npos)
    line.remove_prefix(prefix + 2);
  while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
  return line;
}

}  // namespace

std::string_view strip_ansi(std::string_view line, std::string& buffer) {
  if (!std::memchr(line.data(), '\x1b', line.size()) && !std::memchr(line.data(), '\r', line.size()))
    return line;
  buffer = strip_ansi(line);
  return buffer;
}

std::string strip_ansi(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\x1b') {
      if (s[i] != '\r') out += s[i];
      continue;
    }
    if (i + 1 < s.size() && s[i + 1] == '[') {  // CSI: ESC [ params final-byte
      i += 2;
      while (i < s.size() && !(s[i] >= 0x40 && s[i] <= 0x7e)) ++i;
    } else if (i + 1 < s.size() && s[i + 1] == ']') {  // OSC: ESC ] ... BEL or ESC backslash
      i += 2;
      while (i < s.size() && s[i] != '\a' && !(s[i] == '\x1b' && i + 1 < s.size() && s[i + 1] == '\\')) ++i;
      if (i < s.size() && s[i] == '\x1b') ++i;
    } else {
      ++i;  // a two-byte escape
    }
  }
  return out;
}

bool is_machine_fault(const Failure& failure) {
  return failure.failure_class == failure_class::kNixSetup ||
         failure.failure_class == failure_class::kDiskFull;
}

bool only_the_machine(const Failure& f) {
  return f.failure_class == failure_class::kNixSetup &&
         (contains(f.message, "but I am a '") || f.message.starts_with("ssh: ") ||
          contains(f.message, "cannot build on '") || contains(f.message, "Failed to find a machine"));
}

bool is_transient(const std::string& c) {
  namespace fc = failure_class;
  return c == fc::kNetwork || c == fc::kTimeout || c == fc::kOutOfMemory || c == fc::kDiskFull ||
         c == fc::kNixSetup;
}

namespace {
// Nix's own words when it cannot build at all on this machine (Nix 2.8's texts), and what to
// configure. Checked before everything else: the recipe is not to blame.
std::optional<std::string> nix_setup_hint(std::string_view line) {
  // A remote builder (docs/fleet.md) that cannot be reached, or whose connection broke mid-build: the
  // machine's fault; its job goes to another builder. ssh's own line comes first, before
  // "Connection refused" could read as a download failure.
  if (line.starts_with("ssh: ") || contains(line, "cannot build on '") ||
      contains(line, "Failed to find a machine for remote build"))
    return "the builder cannot be reached: check that it is up, its sshd, and the builder's ssh_key and "
           "public_host_key (ptbuild builders shows its state)";
  if (contains(line, "error: unexpected end-of-file"))
    return "the connection to the builder (or to the nix-daemon) broke during the build: the job goes back "
           "to the queue; check the machine";
  if (contains(line, "specified in 'build-users-group' does not exist"))
    return "Nix runs as root with build users it cannot find: create them as Nix's installer does "
           "(group nixbld with members nixbld1…nixbldN) or install Debian's nix-setup-systemd, or "
           "set 'build-users-group =' in nix.conf";
  if (contains(line, "executing '") && contains(line, "No such file or directory"))
    return "the sandbox hides the builder: build with a builder from the Nix store (nixpkgs' stdenv), "
           "add it to 'sandbox-paths', or set 'sandbox = false' in nix.conf";
  if (contains(line, "cannot connect to socket at '") || contains(line, "cannot connect to daemon") ||
      contains(line, "cannot open connection to remote store 'daemon'"))
    return "no nix-daemon answers: start it (systemctl enable --now nix-daemon) or, for a single-user "
           "Nix, unset NIX_REMOTE";
  if (contains(line, "is required to build '") && contains(line, "but I am a '"))
    return "the builder does not build for the system it claims: it was given this build for a system "
           "in its systems that its Nix cannot build (a wrong systems list, or extra-platforms missing); "
           "the job goes back to the queue for another builder";
  // Nix's own words only: they start the line. A builder's output (a setuptools "error: could not
  // create '/nix/store/…': Permission denied") comes with Nix's "name> " prefix and is the recipe's.
  bool nix_says = line.starts_with("error: ");
  if ((nix_says && contains(line, "/nix/") &&
       (contains(line, "Permission denied") || contains(line, "Operation not permitted") ||
        contains(line, "Read-only file system"))) ||
      (nix_says && contains(line, "attempt to write a readonly database")))
    return "this user may not write the Nix store: build through the nix-daemon (NIX_REMOTE=daemon, "
           "the user in allowed-users) or run as the store's owner";
  return std::nullopt;
}
}  // namespace

namespace {

// A failure a single line shows: the class when any of `any` is in the line (and `also`, when
// given), with its hint. Looked at in this order; the first that matches decides.
struct Signature {
  const char* failure_class;
  std::vector<std::string_view> any;
  std::string_view also;
  const char* hint;
};

// What the build notes of the real repo met with PyTorch 2.10 on CUDA 13 (a source version or
// toolkit newer than the nixpkgs derivation was written for) are among them: the recipe must change.
const std::vector<Signature>& signatures() {
  namespace fc = failure_class;
  static const std::vector<Signature> kAll{
      {fc::kUnknownCudaArch,
       {"Unknown CUDA Architecture Name"},
       "",
       "gpuTargets takes values such as \"9.0\"; an older PyTorch needs the architecture added to "
       "cmake/Modules_CUDA_fix/upstream/FindCUDA/select_compute_arch.cmake"},
      {fc::kUnsupportedGpuArch,
       {"Unsupported gpu architecture 'compute_"},
       "",
       "the CUDA toolkit is too old for this architecture: use a newer cudaPackages"},
      {fc::kVersionSkew,
       {"has no member named 'clockRate'"},
       "",
       "CUDA 13 removed cudaDeviceProp::clockRate: MAGMA 2.9 (a torch dependency) needs the upstream fix: "
       "an overlay with magma.overrideAttrs adding the patch of icl-utk-edu/magma commit 235aefb7"},
      {fc::kVersionSkew,
       {"requires TORCH_FEATURE_VERSION >="},
       "",
       "the source is a newer PyTorch than the version the build reports (an overlay over an older "
       "derivation): set PYTORCH_BUILD_VERSION, write version.txt and pass -DTORCH_BUILD_VERSION to cmake"},
      {fc::kVersionSkew,
       {"fatal error: cccl/"},
       "",
       "the bundled CUTLASS looks for CCCL headers under <cccl/…>, CUDA 13 has them under <cuda/…>: add an "
       "include folder with cccl/{cuda,cub,thrust,nv} links to cudaPackages.cuda_cccl in preConfigure"},
      {fc::kVersionSkew,
       {"file INSTALL cannot find"},
       "",
       "the install step copies a file this source no longer has (PyTorch 2.10: cmake/Modules/"
       "FindCUDAToolkit.cmake; the excerpt names it): create it in postPatch, as a stub that delegates to "
       "CMake's own module"},
      {fc::kVersionSkew,
       {"can't find file to patch"},
       "",
       "a patch of the nixpkgs derivation does not apply to this source version: drop it (patches = [ ]) or "
       "use the patches written for this version"},
      {fc::kVersionSkew,
       {"Hunk #"},
       " FAILED at ",
       "a patch of the nixpkgs derivation does not apply to this source version: drop it (patches = [ ]) or "
       "use the patches written for this version"},
      {fc::kOutOfMemory,
       {"Killed signal terminated program", "died due to signal 9", "virtual memory exhausted",
        "std::bad_alloc", "Cannot allocate memory"},
       "",
       "the compiler ran out of memory: lower max_parallel or the build's cores (backend.args), or add "
       "memory/swap"},
      {fc::kDiskFull,
       {"No space left on device"},
       "",
       "free disk space (nix-collect-garbage, old results) — a PyTorch build needs ~20 GB"},
      {fc::kEvalError,
       {"attribute 'pytorch' missing"},
       "error: attribute '",
       "the attribute is python3Packages.torch, not python3Packages.pytorch"},
      {fc::kEvalError,
       {"error: attribute '"},
       "' missing",
       "check the attribute path against the nixpkgs the recipe pins"},
      {fc::kEvalError,
       {"cannot evaluate a function that has an argument without a value"},
       "",
       "the recipe is a function whose arguments have no defaults (callPackage style): flox calls it with them, "
       "`nix build -f` cannot; use the flox backend, or give every argument a default"},
      {fc::kEvalError,
       {"does not appear to be tracked by git"},
       "",
       "git add the recipe: flox builds only tracked files"},
      {fc::kEvalError,
       {"error: undefined variable", "error: syntax error", "error: infinite recursion",
        "error: cannot coerce", "error: value is ", "error: getting status of", "error: opening file"},
       "",
       "the recipe does not evaluate: fix the Nix expression"},
      {fc::kNetwork,
       {"unable to download", "Could not resolve host", "Temporary failure in name resolution",
        "Connection timed out", "Connection refused", "error: cannot download", "Couldn't resolve host name",
        "SSL connect error", "Network is unreachable", "unable to access 'http"},
       "",
       "a download failed: check the network, a proxy or the URL"},
  };
  return kAll;
}

}  // namespace

std::optional<LogScanner::Hit> LogScanner::match(std::string_view line) const {
  namespace fc = failure_class;
  if (!may_match(line)) return std::nullopt;
  std::string_view msg = message_of(line);
  auto hit = [&](const char* cls, std::string message, std::string hint) {
    return Hit{cls, clip(message), std::move(hint), {}, kContextAfter};
  };
  if (std::optional<std::string> hint = nix_setup_hint(line))
    return hit(fc::kNixSetup, std::string(msg), *hint);
  if (contains(line, "hash mismatch in fixed-output derivation") ||
      contains(line, "hash mismatch in file downloaded from"))
    return hit(
        fc::kHashMismatch, std::string(msg),
        "the recipe pins a hash that does not match the source; ptbuild repairs hashes it finds in the build repo");
  // Only a GPU variant can have CUDA off by mistake; the hint names its architecture.
  if (axes_.is_gpu() &&
      (contains(line, "Could NOT find CUDA") || contains(line, "CUDA cannot be found") || use_cuda_off(line)))
    return hit(fc::kCudaNotFound, "CUDA is off in a GPU variant (" + std::string(msg) + ")",
               "enable CUDA at the derivation level: torch.override { cudaSupport = true; gpuTargets = [ \"" +
                   axes_.torch_arch_flag().value_or("sm_XX").substr(3) +
                   "\" ]; } — .overrideAttrs alone builds CPU-only");
  for (const Signature& sig : signatures())
    for (std::string_view any : sig.any)
      if (contains(line, any) && (sig.also.empty() || contains(line, sig.also)))
        return hit(sig.failure_class, std::string(msg), sig.hint);
  return std::nullopt;
}

void LogScanner::feed(std::string_view raw) {
  std::string_view line = strip_ansi(raw, stripped_);
  // ninja's status lines (core/progress.h): nearly every line of a long build, never one that
  // says why it failed.
  feed_clean(line, ninja_status(line).has_value());
}

void LogScanner::feed_clean(std::string_view line, bool status_line, bool held) {
  if (first_ && first_->lines_after > 0) {
    first_->excerpt.push_back(clip(line));
    --first_->lines_after;
  }
  // Nix warns of each failed download it will try again ("…; retrying in 324 ms"): the line that
  // says why is its final error after them, which takes the retry's place.
  bool retry_warning = first_ && first_->failure_class == failure_class::kNetwork && first_->retry_warning;
  if ((!first_ || retry_warning) && !status_line) {
    if (auto h = match(line); h && (!first_ || h->failure_class == failure_class::kNetwork)) {
      h->retry_warning = contains(line, "; retrying in ");
      std::deque<std::string> before = recent_lines();
      while (before.size() > kContextBefore) before.pop_front();
      h->excerpt = std::move(before);
      h->excerpt.push_back(clip(line));
      first_ = std::move(h);
    }
  }
  // The first error line names the cause ("error: builder for … failed", a compiler's
  // "file.cpp:12:3: error: …"); Nix's "N dependencies … failed" lines only repeat it.
  if (first_error_line_.empty() && !status_line && contains(line, "error:") &&
      (line.starts_with("error:") || contains(line, ": error:") || contains(line, "> error:")) &&
      !contains(line, "dependencies of derivation"))
    first_error_line_ = std::string(message_of(line));
  if (first_failed_drv_.empty() && line.starts_with("error: builder for '/nix/store/")) {
    std::string_view path = line.substr(std::string_view("error: builder for '/nix/store/").size());
    path = path.substr(0, path.find('\''));
    if (size_t dash = path.find('-'); dash != std::string_view::npos) path.remove_prefix(dash + 1);
    if (path.ends_with(".drv")) path.remove_suffix(4);
    first_failed_drv_ = std::string(path);
  }
  held_[recent_next_] = held;
  if (held)
    held_line_[recent_next_] = line;
  else
    clip_into(recent_[recent_next_], line);
  recent_next_ = (recent_next_ + 1) % recent_.size();
  recent_count_ = std::min(recent_count_ + 1, recent_.size());
}

void LogScanner::settle() {
  for (size_t i = 0; i < recent_.size(); ++i)
    if (held_[i]) {
      clip_into(recent_[i], held_line_[i]);
      held_[i] = false;
    }
}

// The ring's lines, oldest first.
std::deque<std::string> LogScanner::recent_lines() const {
  std::deque<std::string> out;
  for (size_t i = 0; i < recent_count_; ++i) {
    size_t at = (recent_next_ + recent_.size() - recent_count_ + i) % recent_.size();
    out.push_back(held_[at] ? clip(held_line_[at]) : recent_[at]);
  }
  return out;
}

std::string LogScanner::tail() const {
  return join_lines(recent_lines());
}

std::string LogScanner::dependency_note() const {
  if (first_failed_drv_.empty() || !axes_.known()) return "";
  const std::string& drv = first_failed_drv_;
  for (const std::optional<std::string>& own : {axes_.gpu_arch, axes_.isa, axes_.family})
    if (own && contains(drv, *own)) return "";
  if (contains(drv, "torch")) return "";
  return " (in " + drv + ", a dependency: not torch itself)";
}

std::optional<Failure> LogScanner::diagnose(int exit_code) const {
  if (first_) {
    // A success is only a failure when CUDA turned out to be off in a GPU variant.
    if (exit_code == 0 && first_->failure_class != failure_class::kCudaNotFound) return std::nullopt;
    return Failure{first_->failure_class, first_->message + dependency_note(), first_->hint,
                   join_lines(first_->excerpt)};
  }
  if (exit_code == 0) return std::nullopt;
  if (exit_code == 137)
    return Failure{failure_class::kOutOfMemory,
                   "the build was killed (exit 137, SIGKILL: likely the OOM killer)",
                   "lower max_parallel or the build's cores, or add memory", join_lines(recent_lines())};
  std::string message = !first_error_line_.empty()
                            ? first_error_line_
                            : "the build failed with exit code " + std::to_string(exit_code);
  return Failure{failure_class::kBuilderFailed, clip(message) + dependency_note(),
                 "read the excerpt and the full log (ptbuild log JOB)", join_lines(recent_lines())};
}

Failure diagnose_text(std::string_view output, int exit_code) {
  LogScanner scanner(VariantAxes{});
  size_t start = 0;
  for (size_t nl; (nl = output.find('\n', start)) != std::string_view::npos; start = nl + 1)
    scanner.feed(output.substr(start, nl - start));
  if (start < output.size()) scanner.feed(output.substr(start));
  return scanner.diagnose(exit_code == 0 ? 1 : exit_code).value_or(Failure{});
}

}  // namespace ptbuild
