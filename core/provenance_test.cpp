#include "core/provenance.h"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>
#include <sodium.h>

#include "core/hash.h"

using namespace ptbuild;
using json = nlohmann::json;

namespace {
// A key pair as Nix writes it ("NAME:BASE64"), made by libsodium.
std::pair<std::string, std::string> key_pair(const std::string& name) {
  REQUIRE(sodium_init() >= 0);
  std::vector<uint8_t> pk(crypto_sign_PUBLICKEYBYTES), sk(crypto_sign_SECRETKEYBYTES);
  crypto_sign_keypair(pk.data(), sk.data());
  return {name + ":" + to_base64(sk), name + ":" + to_base64(pk)};
}
}  // namespace

TEST_CASE("provenance: DSSE's pre-authentication encoding is the specification's") {
  CHECK(dsse_pae("http://example.com/HelloWorld", "hello world") ==
        "DSSEv1 29 http://example.com/HelloWorld 11 hello world");
}

TEST_CASE(
    "provenance: an envelope signed with a Nix key opens with its public key only, and not once changed") {
  auto [secret_text, public_text] = key_pair("cache.example-1");
  std::string error;
  std::optional<NixKey> secret = parse_nix_key(secret_text + "\n", true, error);
  REQUIRE_MESSAGE(secret, error);
  std::optional<NixKey> pub = parse_nix_key(public_text, false, error);
  REQUIRE(pub);
  std::string statement =
      json{{"_type", "https://in-toto.io/Statement/v1"}, {"subject", json::array()}}.dump();
  json envelope = sign_envelope(statement, secret);
  CHECK(envelope["payloadType"] == kInTotoPayloadType);
  REQUIRE(envelope["signatures"].size() == 1);
  CHECK(envelope["signatures"][0]["keyid"] == "cache.example-1");
  std::optional<json> opened = open_envelope(envelope, *pub, error);
  REQUIRE_MESSAGE(opened, error);
  CHECK(opened->dump() == statement);

  // One byte of the statement changed.
  json tampered = envelope;
  std::string changed = statement;
  changed[changed.size() - 2] = 'X';
  tampered["payload"] = to_base64(std::vector<uint8_t>(changed.begin(), changed.end()));
  CHECK_FALSE(open_envelope(tampered, *pub, error));
  CHECK(error.find("does not match") != std::string::npos);
  // Another key.
  std::optional<NixKey> other = parse_nix_key(key_pair("other-1").second, false, error);
  CHECK_FALSE(open_envelope(envelope, *other, error));
  // No signature at all.
  CHECK_FALSE(open_envelope(sign_envelope(statement, std::nullopt), *pub, error));
  CHECK(error == "the statement is not signed");
}

TEST_CASE("provenance: a bad key is named for what it is") {
  std::string error;
  CHECK_FALSE(parse_nix_key("no colon here", true, error));
  CHECK(error == "not a Nix key (NAME:BASE64)");
  CHECK_FALSE(parse_nix_key(key_pair("k").second, true, error));  // a public key where the secret goes
  CHECK(error.find("expected 64 bytes") != std::string::npos);
}

TEST_CASE("provenance: the statement names the output's NAR hash, the commit, the recipe and its pins") {
  ProvenanceFacts f;
  f.out_path = "/nix/store/aaaa-pytorch";
  f.nar_hash_hex = "00ff";
  f.repo_url = "https://github.com/barstoolbluz/build-pytorch";
  f.commit = "abc123";
  f.recipe = ".flox/pkgs/pytorch.nix";
  f.variant = "pytorch-python313-cuda13_0-sm90-avx512";
  f.axes = {{"gpu_arch", "sm90"}, {"cuda", "13_0"}};
  f.drv_path = "/nix/store/bbbb-pytorch.drv";
  f.pins = pinned_urls(
      "let pkgs = import (builtins.fetchTarball \"https://github.com/NixOS/nixpkgs/archive/abc.tar.gz\") {};\n"
      "src = fetchurl { url = \"https://example.org/x.tar.gz\"; };\n"
      "same = fetchurl { url = \"https://example.org/x.tar.gz\"; };\n");
  CHECK(f.pins == std::vector<std::string>{"https://github.com/NixOS/nixpkgs/archive/abc.tar.gz",
                                           "https://example.org/x.tar.gz"});
  f.verify_json = R"({"ok":true,"facts":{"cuda":"13.0"},"problems":[]})";
  json s = provenance_statement(f);
  CHECK(s["_type"] == "https://in-toto.io/Statement/v1");
  CHECK(s["predicateType"] == "https://slsa.dev/provenance/v1");
  CHECK(s["subject"][0]["name"] == f.out_path);
  CHECK(s["subject"][0]["digest"]["sha256"] == "00ff");
  const json& def = s["predicate"]["buildDefinition"];
  CHECK(def["externalParameters"]["commit"] == "abc123");
  CHECK(def["externalParameters"]["axes"]["gpu_arch"] == "sm90");
  CHECK(def["resolvedDependencies"][0]["digest"]["gitCommit"] == "abc123");
  CHECK(def["resolvedDependencies"].size() == 4);  // the commit, the derivation, two pins
  CHECK(s["predicate"]["runDetails"]["byproducts"][0]["annotations"]["ok"] == true);
}
