#include "daemon/log_reader.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>

#include <zstd.h>

namespace ptbuild {
namespace {

constexpr std::string_view kMiddleLeftOut =
    "\n[ptbuild: the middle of this log was left out (daemon.log_max)]\n";
constexpr size_t kPlainBlock = 64 * 1024;

// A file mapped read-only for the length it has now.
class Mapped {
 public:
  explicit Mapped(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return;
    struct stat st {};
    if (::fstat(fd, &st) == 0) {
      found_ = true;
      size_ = static_cast<size_t>(st.st_size);
      if (size_ > 0) {
        void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED)
          found_ = false, size_ = 0;
        else
          data_ = static_cast<const char*>(p);
      }
    }
    ::close(fd);
  }
  ~Mapped() {
    if (data_) ::munmap(const_cast<char*>(data_), size_);
  }
  Mapped(const Mapped&) = delete;
  Mapped& operator=(const Mapped&) = delete;
  bool found() const { return found_; }
  std::string_view bytes() const { return {data_, size_}; }
  bool zstd() const {
    static constexpr unsigned char kMagic[] = {0x28, 0xb5, 0x2f, 0xfd};
    return size_ >= 4 && std::memcmp(data_, kMagic, 4) == 0;
  }

 private:
  const char* data_ = nullptr;
  size_t size_ = 0;
  bool found_ = false;
};

// The size of the complete frame at the start of `bytes`, or nullopt for an unfinished one.
std::optional<size_t> frame_size(std::string_view bytes) {
  size_t n = ZSTD_findFrameCompressedSize(bytes.data(), bytes.size());
  if (ZSTD_isError(n)) return std::nullopt;
  return n;
}

// Decodes one frame (complete or not), calling `sink` with pieces of text until it returns false.
void decode_frame(std::string_view frame, const std::function<bool(std::string_view)>& sink) {
  std::unique_ptr<ZSTD_DCtx, decltype(&ZSTD_freeDCtx)> dctx(ZSTD_createDCtx(), ZSTD_freeDCtx);
  std::string buf(ZSTD_DStreamOutSize(), '\0');
  ZSTD_inBuffer in{frame.data(), frame.size(), 0};
  while (true) {
    ZSTD_outBuffer out{buf.data(), buf.size(), 0};
    size_t rc = ZSTD_decompressStream(dctx.get(), &out, &in);
    if (ZSTD_isError(rc)) return;  // damaged: what came before stands
    if (out.pos > 0 && !sink(std::string_view(buf.data(), out.pos))) return;
    if (rc == 0) return;                                  // the frame's end
    if (in.pos == in.size && out.pos < out.size) return;  // unfinished: all there is for now
  }
}

// The files of a log in order: the log itself, then its tail segments that still exist.
std::vector<int> files_of(const std::string& path) {
  std::vector<int> files{0};
  int last = last_log_segment(path);
  for (int n = std::max(1, last - 1); n <= last; ++n)
    if (std::filesystem::exists(log_segment_path(path, n))) files.push_back(n);
  return files;
}

std::string file_path(const std::string& path, int file) {
  return file == 0 ? path : log_segment_path(path, file);
}

}  // namespace

std::string decode_zstd(std::string_view frames) {
  std::string text;
  while (!frames.empty()) {
    std::optional<size_t> size = frame_size(frames);
    decode_frame(frames.substr(0, size.value_or(frames.size())), [&](std::string_view piece) {
      text.append(piece);
      return true;
    });
    if (!size) break;
    frames.remove_prefix(*size);
  }
  return text;
}

std::string log_segment_path(const std::string& path, int n) {
  return path + ".tail." + std::to_string(n);
}

int last_log_segment(const std::string& path) {
  std::error_code ec;
  std::filesystem::path p(path);
  std::string prefix = p.filename().string() + ".tail.";
  int last = 0;
  for (const auto& entry : std::filesystem::directory_iterator(p.parent_path(), ec)) {
    std::string name = entry.path().filename().string();
    if (!name.starts_with(prefix)) continue;
    std::string n = name.substr(prefix.size());
    if (!n.empty() && n.size() < 9 && n.find_first_not_of("0123456789") == std::string::npos)
      last = std::max(last, std::stoi(n));
  }
  return last;
}

std::string LogReader::read(LogCursor& cursor, size_t max, bool& at_end) {
  std::string out;
  at_end = false;
  while (out.size() < max) {
    Mapped file(file_path(path_, cursor.file));
    std::string_view bytes = file.bytes();
    bool file_done = true;  // everything of this file that is on disk has been read
    if (file.found() && !file.zstd()) {
      size_t from = std::min<uint64_t>(cursor.offset, bytes.size());
      size_t n = std::min(bytes.size() - from, max - out.size());
      out.append(bytes.substr(from, n));
      cursor.offset = from + n;
      file_done = cursor.offset == bytes.size();
    } else if (file.found()) {
      while (out.size() < max && cursor.offset < bytes.size()) {
        std::string_view rest = bytes.substr(cursor.offset);
        std::optional<size_t> size = frame_size(rest);
        uint64_t seen = 0;
        decode_frame(rest.substr(0, size.value_or(rest.size())), [&](std::string_view text) {
          uint64_t start = seen;
          seen += text.size();
          if (seen <= cursor.skip) return true;
          size_t from = cursor.skip > start ? cursor.skip - start : 0;
          size_t n = std::min(text.size() - from, max - out.size());
          out.append(text.substr(from, n));
          cursor.skip += n;
          return out.size() < max;
        });
        if (out.size() >= max) break;
        if (!size) break;  // an unfinished frame: the rest is not written yet
        cursor.offset += *size;
        cursor.skip = 0;
      }
      file_done = out.size() < max;
    }
    if (!file_done) break;
    // At the end of this file: go on to the next that exists, if any.
    std::vector<int> files = files_of(path_);
    auto next = std::upper_bound(files.begin(), files.end(), cursor.file);
    if (next == files.end()) {
      at_end = true;
      break;
    }
    if (*next > cursor.file + 1) out += kMiddleLeftOut;
    cursor = {*next, 0, 0};
  }
  return out;
}

LogCursor LogReader::tail_start(int64_t lines) {
  std::vector<int> files = files_of(path_);
  bool log_end = true;  // the next byte looked at (going backwards) is the log's last
  int64_t found = 0;    // newlines found after the current piece
  // Pieces of the log, newest first: zstd frames, or blocks of a plain file.
  for (auto f = files.rbegin(); f != files.rend(); ++f) {
    Mapped file(file_path(path_, *f));
    std::string_view bytes = file.bytes();
    struct Piece {
      uint64_t offset, size;
    };
    std::vector<Piece> pieces;
    for (uint64_t at = 0; at < bytes.size();) {
      uint64_t n = bytes.size() - at;
      if (file.zstd())
        n = frame_size(bytes.substr(at)).value_or(n);
      else
        n = std::min<uint64_t>(n, kPlainBlock);
      pieces.push_back({at, n});
      at += n;
    }
    for (auto p = pieces.rbegin(); p != pieces.rend(); ++p) {
      // The positions of the piece's last newlines, as many as are still wanted (+1 for a
      // newline that ends the log).
      std::deque<uint64_t> newlines;
      uint64_t pos = 0, total = 0;
      size_t keep = static_cast<size_t>(lines - found) + 1;
      auto scan = [&](std::string_view text) {
        for (size_t i = 0; i < text.size(); ++i)
          if (text[i] == '\n') {
            newlines.push_back(pos + i);
            if (newlines.size() > keep) newlines.pop_front();
          }
        pos += text.size();
        total = pos;
        return true;
      };
      std::string_view piece = bytes.substr(p->offset, p->size);
      if (file.zstd())
        decode_frame(piece, scan);
      else
        scan(piece);
      if (total == 0) continue;
      if (log_end && !newlines.empty() && newlines.back() == total - 1) newlines.pop_back();
      log_end = false;
      int64_t here = static_cast<int64_t>(newlines.size());
      if (found + here >= lines) {
        uint64_t start = newlines[static_cast<size_t>(here - (lines - found))] + 1;
        return file.zstd() ? LogCursor{*f, p->offset, start} : LogCursor{*f, p->offset + start, 0};
      }
      // Fewer than wanted: all of them count, and the search goes on in the piece before.
      found += here;
    }
  }
  return {files.front(), 0, 0};
}

std::vector<std::string> read_log(const std::string& path, int64_t tail_lines) {
  LogReader reader(path);
  LogCursor cursor = tail_lines > 0 ? reader.tail_start(tail_lines) : LogCursor{};
  std::vector<std::string> chunks;
  bool at_end = false;
  while (!at_end) {
    std::string chunk = reader.read(cursor, kLogChunk, at_end);
    if (!chunk.empty()) chunks.push_back(std::move(chunk));
  }
  return chunks;
}

}  // namespace ptbuild
