#include "local/files.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace ptbuild {

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string write_file_atomically(const std::string& path, const std::string& text) {
  struct stat st {};
  bool existed = ::stat(path.c_str(), &st) == 0;
  std::string tmp = path + ".ptbuild-XXXXXX";
  int fd = ::mkstemp(tmp.data());
  if (fd < 0) return "cannot create a temporary file next to " + path + ": " + std::strerror(errno);
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
            ::fchmod(fd, existed ? st.st_mode & 07777 : 0644) == 0 && ::fsync(fd) == 0;
  std::string err = ok ? "" : std::string(std::strerror(errno));
  if (ok && existed && ::fchown(fd, st.st_uid, st.st_gid) != 0) {
    // Not root: the file becomes ours, with its mode kept.
  }
  ::close(fd);
  if (ok && ::rename(tmp.c_str(), path.c_str()) != 0) {
    ok = false;
    err = std::strerror(errno);
  }
  if (!ok) {
    ::unlink(tmp.c_str());
    return "cannot write " + path + ": " + err;
  }
  return "";
}

}  // namespace ptbuild
