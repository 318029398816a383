// ptbuild: the thin client of ptbuildd (docs/client.md).
#include <cstdlib>
#include <iostream>

#include <nlohmann/json.hpp>

#include "client/commands.h"
#include "core/protocol.h"
#include "core/replies.h"
#include "core/requests.h"
#include "client/render.h"

using namespace ptbuild::client;

namespace {

std::string usage() {
  std::string text = "usage: ptbuild [--socket PATH] [--config FILE] [--json] COMMAND [ARGS…]\n\ncommands:\n";
  for (const Command& c : commands())
    text += "  " + c.name + std::string(c.name.size() < 10 ? 10 - c.name.size() : 1, ' ') + c.summary + "\n";
  text +=
      "\nThe socket is --socket, else $PTBUILD_SOCKET, else the one in the config "
      "(--config, $PTBUILD_CONFIG, ./ptbuild.toml, /etc/ptbuild/ptbuildd.toml).\n"
      "Exit codes: 0 done, 1 the work failed, 2 bad usage or unknown target, 3 daemon unreachable.\n"
      "`ptbuild COMMAND --help` tells more.\n";
  return text;
}

int exit_for(const std::string& code) {
  if (code == "unknown_target" || code == "ambiguous_target" || code == "bad_request" ||
      code == "unknown_op" || code == "not_found")
    return kUsage;
  return kWorkFailed;
}

}  // namespace

// `ptbuild _complete commands|variants|jobs [--socket P]`: words for the shell completions, one
// a line; silent when the daemon cannot be reached (completion must never print errors).
int complete(int argc, char** argv) {
  std::string what = argc > 2 ? argv[2] : "";
  if (what == "commands") {
    for (const Command& c : commands()) std::cout << c.name << "\n";
    return kOk;
  }
  Context ctx;
  for (int i = 3; i + 1 < argc; ++i)
    if (std::string(argv[i]) == "--socket")
      ctx.socket_override = argv[i + 1];
    else if (std::string(argv[i]) == "--config")
      ctx.config_path = argv[i + 1];
  if (!ctx.socket_override)
    if (const char* env = std::getenv("PTBUILD_SOCKET"); env && *env) ctx.socket_override = env;
  try {
    if (what == "variants") {
      auto matrix = ptbuild::protocol::reply_from<ptbuild::protocol::MatrixReply>(
          ctx.connect().call(ptbuild::protocol::op::kMatrix));
      for (const auto& v : matrix.variants) std::cout << v.name << "\n";
    } else if (what == "jobs") {
      auto jobs = ptbuild::protocol::reply_from<ptbuild::protocol::JobsReply>(ctx.connect().call(
          ptbuild::protocol::op::kJobs, ptbuild::protocol::to_args(ptbuild::protocol::JobsRequest{"", 50})));
      for (const auto& j : jobs.jobs) std::cout << j.job.id << "\n";
    }
  } catch (...) {
  }
  return kOk;
}

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "_complete") return complete(argc, argv);
  std::optional<std::string> socket, config_path;
  bool json_out = false, help = false;
  const Command* command = nullptr;
  ParsedArgs args;
  try {
    bool only_positional = false;  // after "--": targets that may start with "-"
    for (int i = 1; i < argc; ++i) {
      std::string arg = argv[i];
      if (command && (only_positional || arg == "--")) {
        if (only_positional) args.positional.push_back(arg);
        only_positional = true;
        continue;
      }
      auto value = [&](const std::string& name) {
        if (i + 1 >= argc) throw UsageError{name + " needs a value"};
        return std::string(argv[++i]);
      };
      if (arg == "--json") {
        json_out = true;
      } else if (arg == "--help" || arg == "-h") {
        help = true;
      } else if (arg == "--socket") {
        socket = value(arg);
      } else if (arg == "--config") {
        config_path = value(arg);
      } else if (!command && !arg.starts_with("-")) {
        command = find_command(arg);
        if (!command) throw UsageError{"unknown command '" + arg + "'"};
      } else if (command && arg.starts_with("-") && arg.size() > 1) {
        const OptionSpec* spec = nullptr;
        for (const OptionSpec& o : command->options)
          if (o.name == arg) spec = &o;
        if (!spec) throw UsageError{"'" + command->name + "' has no option " + arg};
        if (spec->takes_value)
          args.values[arg] = value(arg);
        else
          args.flags.insert(arg);
      } else if (command) {
        args.positional.push_back(arg);
      } else {
        throw UsageError{"unknown option " + arg};
      }
    }
    if (help) {
      std::cout << (command ? command_help(*command) : usage());
      return kOk;
    }
    if (!command) throw UsageError{"no command given"};
  } catch (const UsageError& e) {
    std::cerr << "ptbuild: " << e.message << "\n\n" << (command ? command_help(*command) : usage());
    return kUsage;
  }

  Context ctx;
  ctx.json = json_out;
  ctx.style = Style::for_stdout();
  ctx.config_path = config_path;
  if (socket)
    ctx.socket_override = *socket;
  else if (const char* env = std::getenv("PTBUILD_SOCKET"); env && *env)
    ctx.socket_override = env;

  auto fail = [&](int code, const std::string& error_code, const std::string& message) {
    if (json_out)
      std::cout << nlohmann::json{{"error", {{"code", error_code}, {"message", message}}}}.dump(2) << "\n";
    std::cerr << "ptbuild: " << printable(message) << "\n";
    return code;
  };
  try {
    return command->run(ctx, args);
  } catch (const UsageError& e) {
    return fail(kUsage, "usage", e.message);
  } catch (const ptbuild::protocol::ArgError& e) {  // an argument the client reads as the daemon would
    return fail(kUsage, "usage", e.message);
  } catch (const Unreachable& e) {
    return fail(kUnreachable, "unreachable", e.message);
  } catch (const RemoteError& e) {
    return fail(exit_for(e.code), e.code, e.message);
  }
}
