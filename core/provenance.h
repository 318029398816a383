// Provenance of a verified build (docs/provenance.md): an in-toto Statement v1 with an SLSA
// provenance v1 predicate, signed as a DSSE envelope with the Nix ed25519 key that signs the
// published store paths. The statement is made from facts the daemon gathers; the signatures are
// libsodium's. Pure.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace ptbuild {

// A Nix signing key as `nix key generate-secret` writes it: "NAME:BASE64", 64 bytes secret
// (libsodium's seed and public key) or 32 public.
struct NixKey {
  std::string name;
  std::vector<uint8_t> bytes;
};
// nullopt with `error` naming what is wrong.
std::optional<NixKey> parse_nix_key(std::string_view text, bool secret, std::string& error);

inline constexpr const char* kInTotoPayloadType = "application/vnd.in-toto+json";

// DSSE's pre-authentication encoding: what is signed.
std::string dsse_pae(std::string_view payload_type, std::string_view payload);
// The envelope of `statement` (JSON text), signed with `key` (none: no signature).
nlohmann::json sign_envelope(const std::string& statement, const std::optional<NixKey>& key);
// Checks the envelope's signature with `public_key`; the statement, or nullopt with `error`.
std::optional<nlohmann::json> open_envelope(const nlohmann::json& envelope, const NixKey& public_key,
                                            std::string& error);

struct ProvenanceFacts {
  std::string out_path;
  std::string nar_hash_hex;  // sha256 of the output's NAR
  std::string repo_url;      // as git reports it (remote.origin.url), else the repo's path
  std::optional<std::string> commit;
  std::string recipe;  // relative to the repo
  std::string variant;
  std::map<std::string, std::string> axes;  // family, python, cuda, gpu_arch, isa, …
  std::optional<std::string> drv_path;
  std::vector<std::string> pins;  // the nixpkgs (and other) URLs the recipe's files fetch
  std::string backend;
  std::string ptbuild_version;
  std::string nix_version;
  std::string builder;
  int64_t job = 0;
  std::string started_at, finished_at;
  std::optional<std::string> verify_json;  // {ok, facts, problems}
};
nlohmann::json provenance_statement(const ProvenanceFacts& facts);

// The URLs a recipe's text fetches (fetchTarball, fetchurl, url = "…"): its pins.
std::vector<std::string> pinned_urls(std::string_view nix_text);

}  // namespace ptbuild
