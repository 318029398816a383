// A webhook receiver for notification tests: a real HTTP server on loopback (plain sockets, one
// thread) that records each POST's body and answers with the statuses it is given in turn, or
// holds every connection open without answering (a hanging webhook).
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace ptbuild::testing {

class WebhookServer {
 public:
  // `statuses`: the answers to the first requests, in order; 200 after them. `hang`: never answer.
  explicit WebhookServer(std::vector<int> statuses = {}, bool hang = false);
  ~WebhookServer();
  uint16_t port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/hook"; }
  std::vector<std::string> bodies() const;       // of every request, answered or not
  bool holding() const { return holding_ > 0; }  // hang: a connection is open and unanswered

 private:
  void serve();
  void answer(int fd);

  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::vector<int> statuses_;
  bool hang_;
  std::atomic<bool> stop_{false};
  std::atomic<int> holding_{0};
  mutable std::mutex mutex_;
  std::vector<std::string> bodies_;
  std::thread thread_;
};

}  // namespace ptbuild::testing
