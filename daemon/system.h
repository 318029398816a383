// Thin wrappers over the few system facilities the daemon needs outside Asio.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

namespace ptbuild {

struct PeerCredentials {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
};

std::optional<PeerCredentials> peer_credentials(int socket_fd);

// Root, the daemon's own user and members of `admin_group` may change things (docs/protocol.md).
bool may_change(uid_t uid, const std::string& admin_group);

// Creates a folder and its parents; returns an error message or "".
std::string make_dirs(const std::string& path, unsigned mode);
// Why the state folder must not be used (another user owns it), or "".
std::string check_state_owner(const std::string& state_dir);
// Why the builds' low CPU priority will not hold on this machine, or "": in the root cgroup with
// the kernel's autogroup on, every session is a group of its own with an equal share, and Nix
// starts each builder in a new session. `proc` is /proc (a test's stand-in elsewhere).
std::string builds_priority_warning(const std::string& proc = "/proc");

// Holds an exclusive flock on a file for the life of the process, so that two daemons never
// share one state folder. Returns the fd, or an error message.
struct LockResult {
  int fd = -1;
  std::string error;
};
LockResult lock_state_dir(const std::string& state_dir);

// Prepares a socket path: the folder exists, and a stale socket file from a dead daemon is gone.
// Fails when another daemon answers on it.
std::string prepare_socket_path(const std::string& path);

// After bind(): mode 0660, group admin_group (docs/protocol.md): root, the daemon's user and the group's
// members can connect; others are refused by the kernel. Returns a warning, or "".
std::string restrict_socket(const std::string& path, const std::string& admin_group);

}  // namespace ptbuild
