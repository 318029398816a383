// The socket protocol (docs/protocol.md): newline-delimited JSON over a Unix socket.
//
//   server -> client  {"hello":"ptbuildd","protocol":1,"version":"0.1.0"}
//   client -> server  {"hello":"ptbuild","protocol":1,"version":"0.1.0"}
//   client -> server  {"id":1,"op":"queue","args":{"targets":["sm90-avx512"]}}
//   server -> client  {"id":1,"ok":true,"result":{...}}
//                     {"id":1,"ok":false,"error":{"code":"unknown_target","message":"..."}}
//   server -> client  {"id":1,"event":"log","data":{...}}        (pushed, for log -f / --watch)
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

namespace ptbuild::protocol {

inline constexpr int kVersion = 1;
inline constexpr size_t kMaxLine = 1024 * 1024;  // bytes, without the newline
// Arrays and objects nested deeper than this are refused before they are parsed: copying or
// destroying a JSON value recurses, and 100,000 levels would overflow the daemon's stack.
inline constexpr size_t kMaxDepth = 64;

// Error codes: stable strings that scripts may match on.
namespace code {
inline constexpr const char* kBadJson = "bad_json";
inline constexpr const char* kBadRequest = "bad_request";
inline constexpr const char* kLineTooLong = "line_too_long";
inline constexpr const char* kUnknownOp = "unknown_op";
inline constexpr const char* kUnknownTarget = "unknown_target";
inline constexpr const char* kAmbiguousTarget = "ambiguous_target";
inline constexpr const char* kNotFound = "not_found";
inline constexpr const char* kPermissionDenied = "permission_denied";
inline constexpr const char* kConflict = "conflict";
inline constexpr const char* kInternal = "internal";
inline constexpr const char* kBusy = "busy";  // too many connections
}  // namespace code

nlohmann::json hello(std::string_view who);

// Every op of docs/protocol.md, in one place: the client names them from here, the socket server checks
// who may call them, the HTTP server (docs/web.md) which ones it may serve.
struct OpSpec {
  std::string_view name;
  bool changes_things;  // only root, the daemon's user and admin_group; never over HTTP
  bool replies_later;   // answers with events first (log, wait, watch)
};
namespace op {
inline constexpr OpSpec kMatrix{"matrix", false, false};
inline constexpr OpSpec kStatus{"status", false, false};
inline constexpr OpSpec kJobs{"jobs", false, false};
inline constexpr OpSpec kShow{"show", false, false};
inline constexpr OpSpec kFixes{"fixes", false, false};
inline constexpr OpSpec kLog{"log", false, true};
inline constexpr OpSpec kWait{"wait", false, true};
inline constexpr OpSpec kWatch{"watch", false, true};
inline constexpr OpSpec kQueue{"queue", true, false};
inline constexpr OpSpec kCancel{"cancel", true, false};
inline constexpr OpSpec kRetry{"retry", true, false};
inline constexpr OpSpec kPause{"pause", true, false};
inline constexpr OpSpec kResume{"resume", true, false};
inline constexpr OpSpec kDrain{"drain", true, false};
inline constexpr OpSpec kPublish{"publish", true, false};
inline constexpr OpSpec kBuilders{"builders", false, false};
inline constexpr OpSpec kSetBuilder{"set_builder", true, false};
inline constexpr OpSpec kNightly{"nightly", true, false};
inline constexpr OpSpec kGc{"gc", true, false};
inline constexpr OpSpec kChanges{"changes", false, false};
inline constexpr OpSpec kBisect{"bisect", true, false};
inline constexpr OpSpec kBisectStatus{"bisect_status", false, false};
inline constexpr OpSpec kBisectCancel{"bisect_cancel", true, false};
inline constexpr OpSpec kProvenance{"provenance", false, false};
inline constexpr OpSpec kAll[] = {kMatrix, kStatus,  kJobs,    kShow,         kFixes,        kLog,
                                  kWait,   kWatch,   kQueue,   kCancel,       kRetry,        kPause,
                                  kResume, kDrain,   kPublish, kNightly,      kBuilders,     kSetBuilder,
                                  kGc,     kChanges, kBisect,  kBisectStatus, kBisectCancel, kProvenance};
}  // namespace op
const OpSpec* find_op(std::string_view name);

struct Request {
  int64_t id = 0;
  std::string op;
  nlohmann::json args = nlohmann::json::object();
};

struct RequestError {
  nlohmann::json id;  // the id if one could be read, else null
  std::string code;
  std::string message;
};

// Parses one line; never throws.
std::variant<Request, RequestError> parse_request(std::string_view line);

nlohmann::json ok_reply(int64_t id, nlohmann::json result);
// ok_reply(id, result) as text, for a result already written as JSON text (json_text).
std::string ok_reply_text(int64_t id, std::string_view result_json);
nlohmann::json error_reply(const nlohmann::json& id, std::string_view code, std::string_view message);
nlohmann::json event(int64_t id, std::string_view name, nlohmann::json data);

// A value as it goes on the wire: one line, bad UTF-8 (build logs are not always valid) replaced.
std::string json_text(const nlohmann::json& value);

// Typed access to request arguments that reports the argument's name on a wrong type.
struct ArgError {
  std::string message;
};
std::string arg_string(const nlohmann::json& args, const char* key, std::string fallback = "");
// An integer within [min, max]; one outside (a number JSON holds past 64 bits included) is an
// ArgError that names the range, never a value wrapped around.
struct IntRange {
  int64_t min, max;
  bool contains(int64_t v) const { return v >= min && v <= max; }
};
inline constexpr IntRange kAnyInt{INT64_MIN, INT64_MAX};
int64_t arg_int(const nlohmann::json& args, const char* key, int64_t fallback, IntRange range = kAnyInt);
bool arg_bool(const nlohmann::json& args, const char* key, bool fallback = false);
std::vector<std::string> arg_strings(const nlohmann::json& args, const char* key);

}  // namespace ptbuild::protocol
