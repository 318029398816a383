#include "core/protocol.h"

#include <algorithm>

namespace ptbuild::protocol {

nlohmann::json hello(std::string_view who) {
  return {{"hello", who}, {"protocol", kVersion}, {"version", PTBUILD_VERSION}};
}

const OpSpec* find_op(std::string_view name) {
  for (const OpSpec& spec : op::kAll)
    if (spec.name == name) return &spec;
  return nullptr;
}

namespace {
// The deepest nesting of arrays and objects in a JSON text (brackets inside strings do not count),
// counted only up to `limit + 1`.
size_t nesting_depth(std::string_view text, size_t limit) {
  size_t depth = 0, deepest = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
      if (deepest > limit) break;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}
}  // namespace

std::variant<Request, RequestError> parse_request(std::string_view line) {
  if (nesting_depth(line, kMaxDepth) > kMaxDepth)
    return RequestError{
        nullptr, code::kBadRequest,
        "the request nests arrays or objects deeper than " + std::to_string(kMaxDepth) + " levels"};
  nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return RequestError{nullptr, code::kBadJson, "the line is not valid JSON"};
  if (!j.is_object()) return RequestError{nullptr, code::kBadRequest, "a request must be a JSON object"};
  nlohmann::json id = j.contains("id") ? j["id"] : nlohmann::json(nullptr);
  if (!id.is_number_integer()) return RequestError{nullptr, code::kBadRequest, "\"id\" must be an integer"};
  if (id.is_number_unsigned() && id.get<uint64_t>() > uint64_t{INT64_MAX})  // echoed as -1 before
    return RequestError{id, code::kBadRequest, "\"id\" must be at most " + std::to_string(INT64_MAX)};
  if (!j.contains("op") || !j["op"].is_string())
    return RequestError{id, code::kBadRequest, "\"op\" must be a string"};
  Request r;
  r.id = id.get<int64_t>();
  r.op = j["op"].get<std::string>();
  if (j.contains("args")) {
    if (!j["args"].is_object() && !j["args"].is_null())
      return RequestError{id, code::kBadRequest, "\"args\" must be an object"};
    if (j["args"].is_object()) r.args = j["args"];
  }
  return r;
}

nlohmann::json ok_reply(int64_t id, nlohmann::json result) {
  return {{"id", id}, {"ok", true}, {"result", std::move(result)}};
}

// Keys in the order json_text writes them (sorted): id, ok, result.
std::string ok_reply_text(int64_t id, std::string_view result_json) {
  std::string text = "{\"id\":" + std::to_string(id) + ",\"ok\":true,\"result\":";
  text.reserve(text.size() + result_json.size() + 1);
  text += result_json;
  text += '}';
  return text;
}

std::string json_text(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

nlohmann::json error_reply(const nlohmann::json& id, std::string_view code, std::string_view message) {
  return {{"id", id}, {"ok", false}, {"error", {{"code", code}, {"message", message}}}};
}

nlohmann::json event(int64_t id, std::string_view name, nlohmann::json data) {
  return {{"id", id}, {"event", name}, {"data", std::move(data)}};
}

namespace {
[[noreturn]] void wrong_type(const char* key, const char* expected) {
  throw ArgError{std::string("argument \"") + key + "\" must be " + expected};
}
}  // namespace

std::string arg_string(const nlohmann::json& args, const char* key, std::string fallback) {
  auto it = args.find(key);
  if (it == args.end() || it->is_null()) return fallback;
  if (!it->is_string()) wrong_type(key, "a string");
  return it->get<std::string>();
}

int64_t arg_int(const nlohmann::json& args, const char* key, int64_t fallback, IntRange range) {
  auto it = args.find(key);
  if (it == args.end() || it->is_null()) return fallback;
  if (!it->is_number_integer()) wrong_type(key, "an integer");
  bool fits = !(it->is_number_unsigned() && it->get<uint64_t>() > uint64_t{INT64_MAX});
  if (!fits || !range.contains(it->get<int64_t>()))
    throw ArgError{std::string("argument \"") + key + "\" must be between " + std::to_string(range.min) +
                   " and " + std::to_string(range.max) + ", got " + it->dump()};
  return it->get<int64_t>();
}

bool arg_bool(const nlohmann::json& args, const char* key, bool fallback) {
  auto it = args.find(key);
  if (it == args.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) wrong_type(key, "true or false");
  return it->get<bool>();
}

std::vector<std::string> arg_strings(const nlohmann::json& args, const char* key) {
  auto it = args.find(key);
  if (it == args.end() || it->is_null()) return {};
  if (!it->is_array()) wrong_type(key, "an array of strings");
  std::vector<std::string> out;
  for (const auto& v : *it) {
    if (!v.is_string()) wrong_type(key, "an array of strings");
    out.push_back(v.get<std::string>());
  }
  return out;
}

}  // namespace ptbuild::protocol
