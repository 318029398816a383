#include "tests/support/netns_builder.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <sstream>
#include <stdexcept>

#include "tests/support/harness.h"

namespace ptbuild::testing {

namespace {
ProcessResult must(const std::vector<std::string>& argv) {
  ProcessResult r = run_process(argv);
  if (r.exit_code != 0) {
    std::string cmd;
    for (const auto& a : argv) cmd += a + " ";
    throw std::runtime_error(cmd + "failed: " + r.err + r.out);
  }
  return r;
}

std::string sh(const std::string& script) {
  return must({"/bin/sh", "-c", script}).out;
}

bool port_open(const std::string& address) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(22);
  ::inet_pton(AF_INET, address.c_str(), &sa.sin_addr);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
  ::close(fd);
  return ok;
}

std::string toml_list(const std::vector<std::string>& items) {
  std::string out = "[";
  for (const auto& i : items) out += (out.size() > 1 ? ", \"" : "\"") + i + "\"";
  return out + "]";
}
}  // namespace

std::string NetnsBuilder::unavailable() {
  if (::geteuid() != 0) return "namespaced builders need root (ip netns, mount)";
  if (!std::filesystem::exists("/usr/sbin/sshd")) return "no /usr/sbin/sshd (apt-get install openssh-server)";
  if (!std::filesystem::exists("/usr/sbin/ip")) return "no /usr/sbin/ip (apt-get install iproute2)";
  ProcessResult probe =
      run_process({"/usr/bin/unshare", "--net", "--mount", "--propagation", "private", "/bin/true"});
  if (probe.exit_code != 0) return "the kernel forbids network or mount namespaces here: " + probe.err;
  // What the builders need, tried once: a named network namespace joined to this one by a veth.
  std::string ns = "ptb-probe-" + std::to_string(::getpid());
  ProcessResult made = run_process({"/bin/sh", "-c",
                                    "/usr/sbin/ip netns add " + ns + " && /usr/sbin/ip link add " +
                                        ns.substr(0, 9) + "v type veth peer name eth0 netns " + ns +
                                        "; rc=$?; /usr/sbin/ip netns del " + ns + " 2>/dev/null; exit $rc"});
  if (made.exit_code != 0) return "cannot make a network namespace with a veth pair here: " + made.err;
  return "";
}

NetnsBuilder::NetnsBuilder(TempDir& dir, std::string name, int index, std::string extra_nix_conf,
                           bool start_now)
    : dir_(dir), name_(std::move(name)), index_(index) {
  std::string pid = std::to_string(::getpid() % 100000);
  netns_ = "ptb-" + pid + "-" + std::to_string(index_);
  veth_ = "ptb" + pid + "v" + std::to_string(index_);
  folder_ = dir_ / ("builder-" + name_);
  std::filesystem::create_directories(folder_);
  key_ = folder_ + "/client_key";
  sh("ssh-keygen -q -t ed25519 -N '' -f " + key_ + " && ssh-keygen -q -t ed25519 -N '' -f " + folder_ +
     "/host_key && cp " + key_ + ".pub " + folder_ + "/authorized_keys");
  dir_.write("builder-" + name_ + "/etc/nix.conf",
             "build-users-group =\nsandbox = false\nsubstituters =\nexperimental-features = nix-command\n" +
                 extra_nix_conf + "\n");
  dir_.write("builder-" + name_ + "/sshd_config",
             "ListenAddress " + address() + "\nPort 22\nHostKey " + folder_ +
                 "/host_key\nAuthorizedKeysFile " + folder_ +
                 "/authorized_keys\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n"
                 "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPidFile " +
                 folder_ +
                 "/sshd.pid\n"
                 "SetEnv NIX_CONF_DIR=" +
                 folder_ + "/etc NIX_USER_CONF_FILES=" + folder_ + "/etc/nix.conf\n");
  std::string subnet = "10.213." + std::to_string(index_);
  // What a crashed earlier run left on this subnet goes first, so routes are not ambiguous.
  sh("for link in $(/usr/sbin/ip -o -4 addr show to " + subnet +
     ".0/24 | awk '{print $2}'); do /usr/sbin/ip link del \"${link%@*}\" || true; done; "
     "/usr/sbin/ip netns del " +
     netns_ + " 2>/dev/null; true");
  must({"/usr/sbin/ip", "netns", "add", netns_});
  must({"/usr/sbin/ip", "link", "add", veth_, "type", "veth", "peer", "name", "eth0", "netns", netns_});
  must({"/usr/sbin/ip", "addr", "add", subnet + ".1/24", "dev", veth_});
  must({"/usr/sbin/ip", "link", "set", veth_, "up"});
  must({"/usr/sbin/ip", "netns", "exec", netns_, "ip", "addr", "add", address() + "/24", "dev", "eth0"});
  must({"/usr/sbin/ip", "netns", "exec", netns_, "ip", "link", "set", "eth0", "up"});
  must({"/usr/sbin/ip", "netns", "exec", netns_, "ip", "link", "set", "lo", "up"});
  if (start_now) start();
}

NetnsBuilder::~NetnsBuilder() {
  kill_all();
  run_process({"/usr/sbin/ip", "netns", "del", netns_});
  run_process({"/usr/sbin/ip", "link", "del", veth_});
}

std::string NetnsBuilder::address() const {
  return "10.213." + std::to_string(index_) + ".2";
}

std::string NetnsBuilder::public_host_key() const {
  return sh("base64 -w0 " + folder_ + "/host_key.pub");
}

std::string NetnsBuilder::config(int max_jobs, const std::vector<std::string>& systems,
                                 const std::vector<std::string>& supported,
                                 const std::vector<std::string>& mandatory) const {
  return "\n[[builder]]\nname = \"" + name_ + "\"\nuri = \"" + uri() + "\"\nssh_key = \"" + key_ +
         "\"\nmax_jobs = " + std::to_string(max_jobs) + "\nsystems = " + toml_list(systems) +
         "\nsupported_features = " + toml_list(supported) + "\nmandatory_features = " + toml_list(mandatory) +
         "\npublic_host_key = \"" + public_host_key() + "\"\n";
}

void NetnsBuilder::start() {
  std::filesystem::create_directories("/run/sshd");  // sshd's privilege separation folder
  // sshd daemonizes itself; the mount namespace lives as long as a process is in it.
  must({"/usr/sbin/ip", "netns", "exec", netns_, "unshare", "--mount", "--propagation", "private", "/bin/sh",
        "-c",
        // An empty /root too: a fresh machine's, not this one's (whose .bashrc, which bash reads for
        // an ssh command, ran `pyenv rehash` and hung every session on a stale lock).
        "mount -t tmpfs tmpfs /nix && mount -t tmpfs tmpfs /root && echo " + name_ +
            " > /nix/builder-name && exec /usr/sbin/sshd -f " + folder_ + "/sshd_config -E " + folder_ +
            "/sshd.log"});
  if (!eventually([&] { return port_open(address()); }, std::chrono::seconds(20)))
    throw std::runtime_error("builder " + name_ + ": sshd does not answer on " + address() + ":22");
}

void NetnsBuilder::signal_all(int signo) {
  std::istringstream pids(run_process({"/usr/sbin/ip", "netns", "pids", netns_}).out);
  for (std::string pid; pids >> pid;) ::kill(std::stoi(pid), signo);
}

void NetnsBuilder::kill_all() {
  // Bounded: a process may fork while we kill; three rounds end any sshd and its sessions.
  for (int round = 0; round < 3; ++round) {
    std::istringstream pids(run_process({"/usr/sbin/ip", "netns", "pids", netns_}).out);
    bool any = false;
    for (std::string pid; pids >> pid;) {
      ::kill(std::stoi(pid), SIGKILL);
      any = true;
    }
    if (!any) break;
    ::usleep(100 * 1000);
  }
}

}  // namespace ptbuild::testing
