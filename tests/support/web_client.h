// An HTTP/1.1 client for tests of the dashboard (plain sockets, bounded waits), and a real headless
// Chromium driven over the DevTools protocol (Beast's WebSocket client).
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

namespace ptbuild::testing {

struct HttpResponse {
  int status = 0;                              // 0: no answer
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
};

// A plain TCP connection to the dashboard (throws when nobody listens), and bytes written to it
// as they are (what the server refuses before reading everything is simply not sent).
int connect_loopback(uint16_t port);
void send_all(int fd, const std::string& data);

// Sends `request` as it is (so tests can send anything) and reads until the server closes.
HttpResponse http_raw(uint16_t port, const std::string& request,
                      std::chrono::seconds timeout = std::chrono::seconds(20));
HttpResponse http_get(uint16_t port, const std::string& target);

// An open event stream (GET /events/...): reads server-sent events one at a time.
class EventStream {
 public:
  EventStream(uint16_t port, const std::string& target);
  ~EventStream();
  // The next event's data, or "" at the end of the stream or after `timeout`.
  std::string next(std::chrono::seconds timeout = std::chrono::seconds(20));
  int status() const { return status_; }
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
  int status_ = 0;
  std::string buffer_;
};

// The port ptbuildd logged for its dashboard ("web dashboard on http://127.0.0.1:PORT/").
uint16_t dashboard_port(const std::string& daemon_log);

class Browser {
 public:
  static bool available();  // Debian's chromium is installed
  Browser(int width = 1280, int height = 900);
  ~Browser();
  Browser(const Browser&) = delete;
  Browser& operator=(const Browser&) = delete;

  void go(const std::string& url);
  // Evaluates `expression` in the page (promises awaited) and returns its value.
  nlohmann::json eval(const std::string& expression);
  void screenshot(const std::string& png_path);
  void set_dark(bool dark);  // prefers-color-scheme

 private:
  nlohmann::json call(const std::string& method, const nlohmann::json& params = nlohmann::json::object());
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ptbuild::testing
