#include "tests/support/web_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/detail/base64.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket/stream.hpp>

#include "tests/support/harness.h"

namespace ptbuild::testing {

int connect_loopback(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    throw std::runtime_error("cannot connect to 127.0.0.1:" + std::to_string(port));
  }
  return fd;
}

void send_all(int fd, const std::string& data) {
  for (size_t off = 0; off < data.size();) {
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return;  // the server may refuse before reading everything: that is what we test
    off += static_cast<size_t>(n);
  }
}

namespace {

using Clock = std::chrono::steady_clock;

// Appends what arrives within `ms`; false on EOF, error or timeout.
int ms_left(Clock::time_point deadline) {
  return static_cast<int>(
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count());
}

// Status line and headers of `text` (up to the blank line); returns the offset of the body.
size_t parse_head(const std::string& text, int& status, std::map<std::string, std::string>& headers) {
  size_t end = text.find("\r\n\r\n");
  if (end == std::string::npos) return std::string::npos;
  std::istringstream in(text.substr(0, end));
  std::string line;
  std::getline(in, line);
  if (line.size() > 12) status = std::stoi(line.substr(9, 3));
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    headers[name] = line.substr(line.find_first_not_of(' ', colon + 1));
  }
  return end + 4;
}

}  // namespace

HttpResponse http_raw(uint16_t port, const std::string& request, std::chrono::seconds timeout) {
  int fd = connect_loopback(port);
  send_all(fd, request);
  std::string text;
  auto deadline = Clock::now() + timeout;
  while (ms_left(deadline) > 0 && read_some(fd, text, ms_left(deadline))) {
  }
  ::close(fd);
  HttpResponse r;
  size_t body = parse_head(text, r.status, r.headers);
  if (body != std::string::npos) r.body = text.substr(body);
  return r;
}

HttpResponse http_get(uint16_t port, const std::string& target) {
  return http_raw(port, "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
}

EventStream::EventStream(uint16_t port, const std::string& target) : fd_(connect_loopback(port)) {
  send_all(fd_, "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n");
  auto deadline = Clock::now() + std::chrono::seconds(20);
  std::map<std::string, std::string> headers;
  size_t body = std::string::npos;
  while (body == std::string::npos && ms_left(deadline) > 0 && read_some(fd_, buffer_, ms_left(deadline)))
    body = parse_head(buffer_, status_, headers);
  buffer_ = body == std::string::npos ? "" : buffer_.substr(body);
}

EventStream::~EventStream() {
  if (fd_ >= 0) ::close(fd_);
}

std::string EventStream::next(std::chrono::seconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (auto event = next_frame(fd_, buffer_, "\n\n", deadline))
    if (event->starts_with("data: ")) return event->substr(6);  // else a comment or another field
  return "";
}

uint16_t dashboard_port(const std::string& daemon_log) {
  std::smatch m;
  static const std::regex re("web dashboard on http://[^ ]*:([0-9]+)/");
  if (!std::regex_search(daemon_log, m, re)) return 0;
  return static_cast<uint16_t>(std::stoi(m[1]));
}

// ---- Chromium over the DevTools protocol ----------------------------------------------------

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;

struct Browser::Impl {
  TempDir profile;
  pid_t pid = -1;
  asio::io_context io;
  websocket::stream<asio::ip::tcp::socket> ws{io};
  int64_t next_id = 1;
};

bool Browser::available() {
  return ::access("/usr/bin/chromium", X_OK) == 0;
}

Browser::Browser(int width, int height) : impl_(std::make_unique<Impl>()) {
  std::string errors = impl_->profile / "stderr";
  impl_->pid = ::fork();
  if (impl_->pid == 0) {
    ::setpgid(0, 0);
    int fd = ::open(errors.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(fd, 2);
    std::string profile = "--user-data-dir=" + impl_->profile.path() + "/profile";
    std::string size = "--window-size=" + std::to_string(width) + "," + std::to_string(height);
    // --no-sandbox: the tests run as root, where Chromium's sandbox refuses to start.
    ::execl("/usr/bin/chromium", "chromium", "--headless=new", "--no-sandbox", "--disable-gpu",
            "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--hide-scrollbars",
            "--disable-dev-shm-usage",  // a container's /dev/shm is often 64 MB
            "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", profile.c_str(),
            size.c_str(), "about:blank", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  // "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/ID" on its stderr.
  std::smatch m;
  static const std::regex re("DevTools listening on ws://127\\.0\\.0\\.1:([0-9]+)/");
  std::string text;
  bool up = eventually(
      [&] {
        std::ifstream in(errors);
        text.assign(std::istreambuf_iterator<char>(in), {});
        return std::regex_search(text, m, re);
      },
      std::chrono::seconds(60));
  if (!up) throw std::runtime_error("chromium did not start: " + text);
  auto port = static_cast<uint16_t>(std::stoi(m[1]));
  // The page target that about:blank opened.
  nlohmann::json targets;
  eventually(
      [&] {
        HttpResponse list = http_get(port, "/json/list");
        targets = nlohmann::json::parse(list.body, nullptr, false);
        if (!targets.is_array()) return false;
        for (const auto& t : targets)
          if (t.value("type", "") == "page") return true;
        return false;
      },
      std::chrono::seconds(30));
  std::string ws_url;
  for (const auto& t : targets)
    if (t.value("type", "") == "page") ws_url = t["webSocketDebuggerUrl"];
  if (ws_url.empty()) throw std::runtime_error("chromium shows no page target");
  std::string path = ws_url.substr(ws_url.find('/', std::string("ws://").size()));
  asio::ip::tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), port);
  impl_->ws.next_layer().connect(endpoint);
  timeval limit{30, 0};  // every read is bounded: a hung browser fails the test instead of hanging it
  ::setsockopt(impl_->ws.next_layer().native_handle(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  impl_->ws.read_message_max(64 * 1024 * 1024);
  impl_->ws.handshake("127.0.0.1:" + std::to_string(port), path);
  call("Page.enable");
}

Browser::~Browser() {
  if (impl_->pid > 0) {
    ::kill(-impl_->pid, SIGKILL);
    ::waitpid(impl_->pid, nullptr, 0);
  }
}

nlohmann::json Browser::call(const std::string& method, const nlohmann::json& params) {
  int64_t id = impl_->next_id++;
  impl_->ws.text(true);
  impl_->ws.write(asio::buffer(nlohmann::json{{"id", id}, {"method", method}, {"params", params}}.dump()));
  for (int i = 0; i < 100000; ++i) {  // events come in between; the answer comes within the read limit
    beast::flat_buffer buffer;
    impl_->ws.read(buffer);
    auto message = nlohmann::json::parse(beast::buffers_to_string(buffer.data()), nullptr, false);
    if (!message.is_object() || message.value("id", int64_t{-1}) != id) continue;
    if (message.contains("error")) throw std::runtime_error(method + ": " + message["error"].dump());
    return message["result"];
  }
  throw std::runtime_error(method + ": no answer");
}

void Browser::go(const std::string& url) {
  call("Page.navigate", {{"url", url}});
  eventually([&] { return eval("document.readyState") == "complete"; }, std::chrono::seconds(30));
}

nlohmann::json Browser::eval(const std::string& expression) {
  nlohmann::json r =
      call("Runtime.evaluate", {{"expression", expression}, {"returnByValue", true}, {"awaitPromise", true}});
  if (r.contains("exceptionDetails"))
    throw std::runtime_error("in the page: " + r["exceptionDetails"].dump());
  return r["result"].value("value", nlohmann::json());
}

void Browser::screenshot(const std::string& png_path) {
  std::string data =
      call("Page.captureScreenshot", {{"format", "png"}, {"captureBeyondViewport", true}})["data"];
  std::string png(beast::detail::base64::decoded_size(data.size()), '\0');
  auto [written, read] = beast::detail::base64::decode(png.data(), data.data(), data.size());
  png.resize(written);
  std::ofstream(png_path, std::ios::binary) << png;
}

void Browser::set_dark(bool dark) {
  call("Emulation.setEmulatedMedia",
       {{"features",
         nlohmann::json::array({{{"name", "prefers-color-scheme"}, {"value", dark ? "dark" : "light"}}})}});
}

}  // namespace ptbuild::testing
