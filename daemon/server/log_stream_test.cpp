// LogStream against a channel that the test controls: how much of a log it reads, and when.
#include "daemon/server/log_stream.h"

#include <fstream>

#include "daemon/scheduler/scheduler_fixture.h"
#include "daemon/server/channel.h"

namespace ptbuild {
namespace {

// A client as the server sees it: it takes nothing (its backlog is all that was sent), and is
// dropped as too slow once `drop_after` bytes wait for it, as the output budget drops one.
class StalledChannel : public Channel {
 public:
  explicit StalledChannel(size_t drop_after) : drop_after_(drop_after) {}
  void send(const nlohmann::json& line) override {
    ++sends;
    if (!open_) return;
    backlog_ += line.dump().size();
    if (backlog_ > drop_after_) {
      open_ = false;
      backlog_ = 0;  // what a closed channel held is forgotten
    }
  }
  bool is_open() const override { return open_; }
  size_t backlog() const override { return backlog_; }
  void when_drained(size_t, std::function<void()> ready) override { waiter = std::move(ready); }

  int sends = 0;
  std::function<void()> waiter;

 private:
  size_t drop_after_;
  size_t backlog_ = 0;
  bool open_ = true;
};

Job finished_job_with_log(testing::Fixture& f, size_t bytes) {
  Job job;
  job.id = 1;
  job.variant = "v";
  job.state = JobState::succeeded;
  job.log_path = f.dir / "logs/1.log";
  std::ofstream out(job.log_path);
  std::string line(99, 'x');
  for (size_t written = 0; written < bytes; written += 100) out << line << '\n';
  return job;
}

TEST_CASE("log stream: a reader dropped as too slow costs nothing more") {
  testing::Fixture f({{"v", "repo"}});
  Job job = finished_job_with_log(f, 16 * 1024 * 1024);
  auto channel = std::make_shared<StalledChannel>(kLogChunk / 2);
  auto stream = std::make_shared<LogStream>(f.scheduler, f.store, channel, 1, job, 0, false);
  stream->start();
  // The first chunk overflows it; nothing more of the 16 MiB log is read or sent after that.
  CHECK(!channel->is_open());
  CHECK(channel->sends == 1);
  CHECK(!channel->waiter);
}

TEST_CASE("log stream: a client that keeps up gets at most a window of a big log in one turn") {
  testing::Fixture f({{"v", "repo"}});
  Job job = finished_job_with_log(f, 16 * 1024 * 1024);
  auto channel = std::make_shared<StalledChannel>(SIZE_MAX);
  auto stream = std::make_shared<LogStream>(f.scheduler, f.store, channel, 1, job, 0, false);
  stream->start();
  // One window (1 MiB in 256 KiB chunks), then it waits for the client and the next turn.
  CHECK(channel->sends == static_cast<int>(LogStream::kWindow / kLogChunk));
  CHECK(channel->waiter);
  channel->waiter = nullptr;  // it holds the stream, which holds the channel: a real one lets go on close
}

}  // namespace
}  // namespace ptbuild
