#include "daemon/system.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

namespace ptbuild {

std::optional<PeerCredentials> peer_credentials(int fd) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return std::nullopt;
  return PeerCredentials{cred.pid, cred.uid, cred.gid};
}

bool may_change(uid_t uid, const std::string& admin_group) {
  if (uid == 0 || uid == ::geteuid()) return true;
  if (admin_group.empty()) return false;
  group* grp = ::getgrnam(admin_group.c_str());
  if (!grp) return false;
  gid_t admin_gid = grp->gr_gid;
  passwd* pw = ::getpwuid(uid);
  if (!pw) return false;
  if (pw->pw_gid == admin_gid) return true;
  std::string user = pw->pw_name;
  int n = 64;
  std::vector<gid_t> groups(static_cast<size_t>(n));
  if (::getgrouplist(user.c_str(), pw->pw_gid, groups.data(), &n) < 0) {
    groups.resize(static_cast<size_t>(n));
    if (::getgrouplist(user.c_str(), pw->pw_gid, groups.data(), &n) < 0) return false;
  }
  groups.resize(static_cast<size_t>(n));
  for (gid_t g : groups)
    if (g == admin_gid) return true;
  return false;
}

std::string make_dirs(const std::string& path, unsigned mode) {
  // Only folders made here get `mode`: an existing one (/tmp, /run) keeps its own.
  std::filesystem::path p(path);
  std::vector<std::filesystem::path> missing;
  for (std::filesystem::path q = p; !q.empty() && !std::filesystem::exists(q); q = q.parent_path()) {
    missing.push_back(q);
    if (q == q.parent_path()) break;
  }
  std::error_code ec;
  std::filesystem::create_directories(p, ec);
  if (ec) return "cannot create " + path + ": " + ec.message();
  for (const auto& q : missing) ::chmod(q.c_str(), mode);
  return "";
}

std::string check_state_owner(const std::string& state_dir) {
  struct stat st {};
  if (::stat(state_dir.c_str(), &st) != 0) return "";
  if (st.st_uid == ::geteuid()) return "";
  passwd* owner = ::getpwuid(st.st_uid);
  return "the state folder " + state_dir + " belongs to " +
         (owner ? std::string(owner->pw_name) : "uid " + std::to_string(st.st_uid)) +
         ", not to ptbuildd's user (uid " + std::to_string(::geteuid()) +
         "): another user could plant files in it; chown it to ptbuildd's user or point state_dir elsewhere";
}

std::string builds_priority_warning(const std::string& proc) {
  std::ifstream autogroup(proc + "/sys/kernel/sched_autogroup_enabled");
  int enabled = 0;
  if (!(autogroup >> enabled) || enabled != 1) return "";
  // The CPU controller's group: cgroup v1 "N:cpu,cpuacct:/path", else v2 "0::/path".
  std::ifstream cgroups(proc + "/self/cgroup");
  std::optional<std::string> v1_cpu, v2;
  for (std::string line; std::getline(cgroups, line);) {
    size_t a = line.find(':'), b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    std::string controllers = line.substr(a + 1, b - a - 1);
    if (controllers.empty())
      v2 = line.substr(b + 1);
    else if (("," + controllers + ",").find(",cpu,") != std::string::npos)
      v1_cpu = line.substr(b + 1);
  }
  if ((v1_cpu ? v1_cpu : v2) != "/") return "";
  return "the kernel groups processes by session (autogroup) and ptbuildd runs in the root cgroup: Nix starts each "
         "builder in a session of its own, so every build gets as much CPU as ptbuildd whatever its low priority, "
         "and answers slow down under load; run ptbuildd as its systemd service (a cgroup of its own), or set "
         "kernel.sched_autogroup_enabled = 0";
}

LockResult lock_state_dir(const std::string& state_dir) {
  std::string path = state_dir + "/ptbuildd.lock";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return {-1, "cannot open " + path + ": " + std::strerror(errno)};
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return {-1, "another ptbuildd is already running with state folder " + state_dir};
  }
  return {fd, ""};
}

std::string prepare_socket_path(const std::string& path) {
  sockaddr_un addr{};
  if (path.size() >= sizeof(addr.sun_path))
    return "socket path " + path + " is too long (at most " + std::to_string(sizeof(addr.sun_path) - 1) +
           " bytes)";
  std::string parent = std::filesystem::path(path).parent_path().string();
  if (!parent.empty())
    if (std::string err = make_dirs(parent, 0755); !err.empty()) return err;
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return "";
  if (!S_ISSOCK(st.st_mode)) return path + " exists and is not a socket; refusing to replace it";
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  bool alive = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  if (alive) return "another ptbuildd is listening on " + path;
  ::unlink(path.c_str());
  return "";
}

std::string restrict_socket(const std::string& path, const std::string& admin_group) {
  if (::chmod(path.c_str(), 0660) != 0) return "cannot chmod " + path + ": " + std::strerror(errno);
  if (admin_group.empty()) return "";
  group* grp = ::getgrnam(admin_group.c_str());
  if (!grp)
    return "admin_group '" + admin_group + "' does not exist: only members of ptbuildd's own group can use " +
           path;
  if (::chown(path.c_str(), static_cast<uid_t>(-1), grp->gr_gid) != 0)
    return "cannot give " + path + " to group " + admin_group + " (" + std::strerror(errno) +
           "): ptbuildd's user must be a member of it";
  return "";
}

}  // namespace ptbuild
