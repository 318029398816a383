// The client's commands (docs/client.md): one function each in commands.cpp.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "client/connection.h"
#include "client/render.h"
#include "core/config.h"

namespace ptbuild::client {

// Exit codes (docs/client.md).
enum Exit : int { kOk = 0, kWorkFailed = 1, kUsage = 2, kUnreachable = 3 };

struct UsageError {
  std::string message;
};

struct ParsedArgs {
  std::vector<std::string> positional;
  std::map<std::string, std::string> values;  // --option VALUE
  std::set<std::string> flags;                // --flag
  bool has(const std::string& f) const { return flags.count(f) > 0; }
  std::optional<std::string> value(const std::string& o) const {
    auto it = values.find(o);
    if (it == values.end()) return std::nullopt;
    return it->second;
  }
  // The option's whole number within [min, max]; anything else is a UsageError naming the range.
  long long integer(const std::string& option, long long fallback, long long min, long long max) const;
};

struct Context {
  std::optional<std::string> socket_override;  // --socket or $PTBUILD_SOCKET
  std::optional<std::string> config_path;      // --config
  bool json = false;
  Style style;
  Connection& connect();  // opened on first use; the socket is the override's or the config's
  // The config, for the commands that work offline (recipes, doctor); UsageError if it is wrong.
  const Config& config();

 private:
  std::unique_ptr<Connection> connection_;
  std::optional<Config> config_;
};

struct OptionSpec {
  std::string name;  // "--priority"
  bool takes_value;
  std::string help;
};

struct Command {
  std::string name;
  std::string args;  // "TARGET…"
  std::string summary;
  std::vector<OptionSpec> options;
  int (*run)(Context&, const ParsedArgs&);
};

const std::vector<Command>& commands();
// In recipes.cpp: the offline commands.
int cmd_recipes(Context& ctx, const ParsedArgs& a);
int cmd_doctor(Context& ctx, const ParsedArgs& a);
const Command* find_command(const std::string& name);
std::string command_help(const Command& c);

}  // namespace ptbuild::client
