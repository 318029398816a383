#include "core/provenance.h"

#include <regex>

#include <nlohmann/json.hpp>
#include <sodium.h>

#include "core/hash.h"

namespace ptbuild {

using json = nlohmann::json;

namespace {
const bool kSodiumReady = sodium_init() >= 0;
}  // namespace

std::optional<NixKey> parse_nix_key(std::string_view text, bool secret, std::string& error) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' '))
    text.remove_suffix(1);
  size_t colon = text.find(':');
  if (colon == std::string_view::npos || colon == 0) {
    error = "not a Nix key (NAME:BASE64)";
    return std::nullopt;
  }
  std::optional<std::vector<uint8_t>> bytes = from_base64(text.substr(colon + 1));
  size_t want = secret ? crypto_sign_SECRETKEYBYTES : crypto_sign_PUBLICKEYBYTES;
  if (!bytes || bytes->size() != want) {
    error = std::string("not a Nix ") + (secret ? "secret" : "public") + " key: expected " +
            std::to_string(want) + " bytes of base64 after the name";
    return std::nullopt;
  }
  return NixKey{std::string(text.substr(0, colon)), std::move(*bytes)};
}

std::string dsse_pae(std::string_view payload_type, std::string_view payload) {
  return "DSSEv1 " + std::to_string(payload_type.size()) + " " + std::string(payload_type) + " " +
         std::to_string(payload.size()) + " " + std::string(payload);
}

json sign_envelope(const std::string& statement, const std::optional<NixKey>& key) {
  std::vector<uint8_t> payload(statement.begin(), statement.end());
  json envelope{
      {"payloadType", kInTotoPayloadType}, {"payload", to_base64(payload)}, {"signatures", json::array()}};
  if (!key || !kSodiumReady) return envelope;
  std::string pae = dsse_pae(kInTotoPayloadType, statement);
  std::vector<uint8_t> sig(crypto_sign_BYTES);
  crypto_sign_detached(sig.data(), nullptr, reinterpret_cast<const unsigned char*>(pae.data()), pae.size(),
                       key->bytes.data());
  envelope["signatures"].push_back({{"keyid", key->name}, {"sig", to_base64(sig)}});
  return envelope;
}

std::optional<json> open_envelope(const json& envelope, const NixKey& public_key, std::string& error) {
  if (!envelope.is_object() || !envelope.contains("payload") || !envelope["payload"].is_string() ||
      envelope.value("payloadType", "") != kInTotoPayloadType) {
    error = "not a DSSE envelope of an in-toto statement";
    return std::nullopt;
  }
  std::optional<std::vector<uint8_t>> payload = from_base64(envelope["payload"].get<std::string>());
  if (!payload) {
    error = "its payload is not base64";
    return std::nullopt;
  }
  std::string statement(payload->begin(), payload->end());
  std::string pae = dsse_pae(kInTotoPayloadType, statement);
  bool signed_by = false, any = false;
  for (const json& s : envelope.value("signatures", json::array())) {
    if (!s.is_object() || !s.contains("sig") || !s["sig"].is_string()) continue;
    any = true;
    std::optional<std::vector<uint8_t>> sig = from_base64(s["sig"].get<std::string>());
    if (sig && sig->size() == crypto_sign_BYTES && kSodiumReady &&
        crypto_sign_verify_detached(sig->data(), reinterpret_cast<const unsigned char*>(pae.data()),
                                    pae.size(), public_key.bytes.data()) == 0)
      signed_by = true;
  }
  if (!signed_by) {
    error = any ? "the signature does not match the statement with key " + public_key.name +
                      " (the statement was changed, or another key signed it)"
                : "the statement is not signed";
    return std::nullopt;
  }
  json parsed = json::parse(statement, nullptr, false);
  if (parsed.is_discarded()) {
    error = "the signed statement is not JSON";
    return std::nullopt;
  }
  return parsed;
}

json provenance_statement(const ProvenanceFacts& f) {
  json axes = json::object();
  for (const auto& [k, v] : f.axes) axes[k] = v;
  json dependencies = json::array();
  if (f.commit)
    dependencies.push_back(
        {{"uri", "git+" + f.repo_url + "@" + *f.commit}, {"digest", {{"gitCommit", *f.commit}}}});
  if (f.drv_path) dependencies.push_back({{"uri", *f.drv_path}, {"name", "derivation"}});
  for (const std::string& pin : f.pins) dependencies.push_back({{"uri", pin}, {"name", "pin"}});
  json byproducts = json::array();
  if (f.verify_json) {
    json verify = json::parse(*f.verify_json, nullptr, false);
    if (!verify.is_discarded()) byproducts.push_back({{"name", "verification"}, {"annotations", verify}});
  }
  return {{"_type", "https://in-toto.io/Statement/v1"},
          {"subject", json::array({{{"name", f.out_path}, {"digest", {{"sha256", f.nar_hash_hex}}}}})},
          {"predicateType", "https://slsa.dev/provenance/v1"},
          {"predicate",
           {{"buildDefinition",
             {{"buildType", "https://ptbuild.dev/nix-build/v1"},
              {"externalParameters",
               {{"repository", f.repo_url},
                {"commit", f.commit ? json(*f.commit) : json(nullptr)},
                {"recipe", f.recipe},
                {"variant", f.variant},
                {"axes", axes}}},
              {"internalParameters", {{"backend", f.backend}}},
              {"resolvedDependencies", dependencies}}},
            {"runDetails",
             {{"builder",
               {{"id", "ptbuild:" + f.builder},
                {"version", {{"ptbuild", f.ptbuild_version}, {"nix", f.nix_version}}}}},
              {"metadata",
               {{"invocationId", "ptbuild-job-" + std::to_string(f.job)},
                {"startedOn", f.started_at},
                {"finishedOn", f.finished_at}}},
              {"byproducts", byproducts}}}}}};
}

std::vector<std::string> pinned_urls(std::string_view nix_text) {
  static const std::regex kUrl(
      R"re((?:url\s*=\s*|fetchTarball\s+|fetchurl\s+)"((?:https?|git\+https?)://[^"$]+)")re");
  std::vector<std::string> out;
  std::string text(nix_text);
  for (std::sregex_iterator it(text.begin(), text.end(), kUrl), end; it != end; ++it)
    if (std::find(out.begin(), out.end(), (*it)[1].str()) == out.end()) out.push_back((*it)[1].str());
  return out;
}

}  // namespace ptbuild
