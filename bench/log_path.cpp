// The daemon's per-byte work on a build's output, in one process: 200 MB of PyTorch-like log
// lines (Nix's "name> " prefix, ninja counters, a compiler warning now and then, a final error)
// through what on_output does with each chunk: line splitting, the failure classifier, the hash
// mismatch reader, the progress parser, and the zstd log writer. Prints MB/s per core for each
// and for all together.
//   build/bench_log_path [MB]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "core/diagnosis.h"
#include "core/hash_mismatch.h"
#include "core/line_splitter.h"
#include "core/output_reader.h"
#include "core/progress.h"
#include "daemon/runner/build_log.h"

using namespace ptbuild;
using Clock = std::chrono::steady_clock;

namespace {
std::string make_log(size_t bytes) {
  std::string log;
  log.reserve(bytes + 4096);
  const size_t total = bytes / 110;
  for (size_t i = 1; log.size() < bytes; ++i) {
    log += "pytorch-python313-cuda13_0-sm90-avx512> [" + std::to_string(i) + "/" + std::to_string(total) +
           "] Building CUDA object caffe2/CMakeFiles/torch_cuda.dir/aten/src/ATen/native/cuda/op_" +
           std::to_string(i * 7919 % 100003) + ".cu.o\n";
    if (i % 500 == 0)
      log += "pytorch-python313-cuda13_0-sm90-avx512> /build/source/aten/src/ATen/native/cuda/Loss.cu(" +
             std::to_string(i % 900) +
             "): warning #177-D: variable \"tid\" was declared but never referenced\n";
  }
  log += "pytorch-python313-cuda13_0-sm90-avx512> FAILED: the last line says why\n";
  return log;
}

template <class F>
double seconds(F&& f) {
  auto t0 = Clock::now();
  f();
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Output arrives as the runner reads it: up to 64 KiB at a time.
constexpr size_t kChunk = 64 * 1024;

// Splits chunks into lines as the scheduler does and hands each line to `on_line`.
template <class F>
void for_each_line(const std::string& log, F&& on_line) {
  LineSplitter lines;
  for (size_t at = 0; at < log.size(); at += kChunk)
    lines.feed(std::string_view(log).substr(at, kChunk), on_line);
  lines.finish(on_line);
}
}  // namespace

int main(int argc, char** argv) {
  size_t mb = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 200;
  std::string log = make_log(mb * 1000 * 1000);
  double size_mb = static_cast<double>(log.size()) / 1e6;
  VariantAxes axes = parse_variant_name("pytorch-python313-cuda13_0-sm90-avx512");
  std::string stripped;

  double split = seconds([&] {
    size_t n = 0;
    for_each_line(log, [&](std::string_view l) { n += l.size(); });
    if (n == 0) std::puts("");
  });
  LogScanner scanner(axes);
  double classify = seconds([&] { for_each_line(log, [&](std::string_view l) { scanner.feed(l); }); });
  HashMismatchCollector mismatches;
  double hashes = seconds([&] { for_each_line(log, [&](std::string_view l) { mismatches.feed(l); }); });
  ProgressTracker progress;
  double progress_s = seconds(
      [&] { for_each_line(log, [&](std::string_view l) { progress.feed(strip_ansi(l, stripped)); }); });
  // The three readers as the scheduler runs them: one pass per line (core/output_reader.h).
  double reader_s = seconds([&] {
    OutputReader reader(axes);
    for (size_t at = 0; at < log.size(); at += kChunk) reader.feed(std::string_view(log).substr(at, kChunk));
    reader.finish();
  });
  std::string path = (std::filesystem::temp_directory_path() / "ptbuild-bench-log-path.log.zst").string();
  std::filesystem::remove(path);
  double written = 0;
  double compress = seconds([&] {
    BuildLog out;
    out.open(path, BuildLog::Attempt::first);
    for (size_t at = 0; at < log.size(); at += kChunk) out.write(std::string_view(log).substr(at, kChunk));
    out.close();
  });
  written = static_cast<double>(std::filesystem::file_size(path)) / 1e6;
  std::filesystem::remove(path);
  // All of it in one pass, as on_output does: each chunk to the log and to the OutputReader.
  OutputReader reader(axes);
  double all = seconds([&] {
    BuildLog out;
    out.open(path, BuildLog::Attempt::first);
    for (size_t at = 0; at < log.size(); at += kChunk) {
      std::string_view chunk = std::string_view(log).substr(at, kChunk);
      out.write(chunk);
      reader.feed(chunk);
    }
    reader.finish();
    out.close();
  });
  std::filesystem::remove(path);
  // The same bytes as 32 builds print them at once: each log gets 16 KiB in turn, and closes a
  // frame every 512 KiB (a flooding build's second). Each compressor's tables are cold again
  // when its turn comes.
  constexpr size_t kBuilds = 32, kTurn = 16 * 1024, kFrame = 512 * 1024;
  std::string base = path.substr(0, path.size() - std::string_view(".log.zst").size());
  auto log_of = [&](size_t b) { return base + "-" + std::to_string(b) + ".log.zst"; };
  auto live_of = [&](size_t b) { return base + "-" + std::to_string(b) + ".live.log"; };
  double interleaved = seconds([&] {
    std::vector<BuildLog> outs(kBuilds);
    for (size_t b = 0; b < kBuilds; ++b) outs[b].open(log_of(b), BuildLog::Attempt::first);
    size_t turn = 0;
    for (size_t at = 0; at < log.size(); at += kTurn, ++turn) {
      BuildLog& out = outs[turn % kBuilds];
      out.write(std::string_view(log).substr(at, kTurn));
      if ((turn / kBuilds + 1) % (kFrame / kTurn) == 0) out.flush();
    }
    for (BuildLog& out : outs) out.close();
  });
  for (size_t b = 0; b < kBuilds; ++b) {
    std::filesystem::remove(log_of(b));
    std::filesystem::remove(live_of(b));
  }
  auto row = [&](const char* what, double s) { std::printf("| %s | %.0f MB/s |\n", what, size_mb / s); };
  std::printf("%.0f MB of log, %s\n\n| step | per core |\n|---|---|\n", size_mb,
              scanner.diagnose(1) ? scanner.diagnose(1)->failure_class.c_str() : "no diagnosis");
  row("line splitting", split);
  row("failure classifier (LogScanner)", classify);
  row("hash mismatch reader", hashes);
  row("progress parser", progress_s);
  row("the three in one pass (OutputReader)", reader_s);
  row("zstd log writer (+ plain live copy)", compress);
  row("all of it, one pass", all);
  row("zstd log writer, 32 logs in turn", interleaved);
  std::printf("\non disk: %.1f MB (%.0f× smaller)\n", written, size_mb / written);
}
