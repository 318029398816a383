// A real remote Nix builder on this machine (docs/fleet.md tests): Debian's sshd in a network
// namespace of its own, reached over a veth pair at 10.213.<index>.2, in a mount namespace whose
// /nix is an empty tmpfs (Debian's Nix lives in /usr/bin, so the builder starts with an empty
// store, as a fresh machine does). Real Nix reaches it over ssh-ng:// with a key the test made;
// the builder's nix-daemon reads a nix.conf of the test's (build-users-group =, no sandbox,
// no substituters).
//
// /nix/builder-name inside it holds its name, so a build can say where it ran.
#pragma once

#include <string>
#include <vector>

#include "tests/support/temp_dir.h"

namespace ptbuild::testing {

class NetnsBuilder {
 public:
  // Why namespaced builders cannot run here ("" when they can): not root, no sshd, or a kernel
  // that forbids network or mount namespaces.
  static std::string unavailable();

  // Creates the namespace and its keys; `extra_nix_conf` is added to its nix.conf (e.g.
  // "extra-platforms = aarch64-linux"). `start` false: nothing answers on it (unreachable).
  NetnsBuilder(TempDir& dir, std::string name, int index, std::string extra_nix_conf = "", bool start = true);
  ~NetnsBuilder();
  NetnsBuilder(const NetnsBuilder&) = delete;
  NetnsBuilder& operator=(const NetnsBuilder&) = delete;

  const std::string& name() const { return name_; }
  std::string address() const;
  std::string uri() const { return "ssh-ng://root@" + address(); }
  std::string ssh_key() const { return key_; }
  std::string public_host_key() const;  // base64 of the host key line, as Nix's machines file has it

  // A [[builder]] table for ptbuild's config.
  std::string config(int max_jobs, const std::vector<std::string>& systems,
                     const std::vector<std::string>& supported = {},
                     const std::vector<std::string>& mandatory = {}) const;

  void start();
  // Kills every process in the namespace (sshd, its sessions, the builds): a machine lost.
  void kill_all();
  // SIGSTOP / SIGCONT to every process in the namespace: a machine frozen mid-build, and back.
  void signal_all(int signo);

 private:
  TempDir& dir_;
  std::string name_;
  int index_;
  std::string netns_;
  std::string veth_;
  std::string key_;
  std::string folder_;
};

}  // namespace ptbuild::testing
