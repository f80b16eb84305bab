// rollout: a declarative rollout orchestrator for Upswift fleets.
#include <algorithm>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <CLI/CLI.hpp>

#include "cli/command.h"
#include "cli/error.h"
#include "cli/exit_codes.h"
#include "cli/session.h"
#include "runner/error.h"
#include "runner/runner.h"
#include "util/suggest.h"

#ifndef ROLLOUT_VERSION
#define ROLLOUT_VERSION "unknown"
#endif

namespace {

// A mistyped command or option, said with what it may have meant ("rollout aply" -> apply,
// "--devcies" -> --devices), as the plan's diagnostics do; nullopt when it is not that.
std::optional<std::string> typo_hint(const CLI::App& app, int argc, char** argv) {
  std::vector<std::string> commands;
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; }))
    commands.push_back(sub->get_name());
  const auto parsed = app.get_subcommands();
  if (parsed.empty()) {
    if (argc < 2 || argv[1][0] == '-') return std::nullopt;
    const std::string word = argv[1];
    const std::vector<std::string_view> names(commands.begin(), commands.end());
    return fmt::format("rollout: unknown command '{}'{}; the commands are {} (rollout --help)",
                       word, rollout::did_you_mean(word, names), fmt::join(commands, ", "));
  }
  // The innermost command given (`state migrate`), and the options it knows.
  const CLI::App* command = parsed.front();
  std::string path = command->get_name();
  int depth = 1;
  while (!command->get_subcommands().empty()) {
    command = command->get_subcommands().front();
    path += " " + command->get_name();
    ++depth;
  }
  // A command of commands (`state`) given a word that is none of them.
  std::vector<std::string> inner;
  for (const CLI::App* sub : command->get_subcommands([](const CLI::App*) { return true; }))
    inner.push_back(sub->get_name());
  if (!inner.empty() && depth + 1 < argc && argv[depth + 1][0] != '-') {
    const std::string word = argv[depth + 1];
    const std::vector<std::string_view> names(inner.begin(), inner.end());
    return fmt::format("rollout {}: unknown command '{}'{}; its commands are {}", path, word,
                       rollout::did_you_mean(word, names), fmt::join(inner, ", "));
  }
  std::vector<std::string> options = {"--help"};
  for (const CLI::Option* opt : command->get_options()) {
    for (const std::string& name : opt->get_lnames()) options.push_back("--" + name);
  }
  for (int i = 2; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--") break;
    if (arg.rfind("--", 0) != 0) continue;
    const std::string name(arg.substr(0, arg.find('=')));
    if (std::find(options.begin(), options.end(), name) != options.end()) continue;
    const std::vector<std::string_view> names(options.begin(), options.end());
    return fmt::format("rollout {}: unknown option '{}'{} (rollout {} --help)", path, name,
                       rollout::did_you_mean(name, names), path);
  }
  return std::nullopt;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace rollout::cli;
  CLI::App app{"rollout: staged, gated, resumable update rollouts for Upswift fleets", "rollout"};
  app.set_version_flag(
      "--version",
      std::string("rollout ") + ROLLOUT_VERSION +
          (ROLLOUT_WITH_POSTGRESQL ? " (state databases: SQLite files and PostgreSQL)"
                                   : " (state databases: SQLite files only; built without "
                                     "PostgreSQL)"));
  app.require_subcommand(1);
  app.footer(kExitCodesHelp);
  Run run;
  add_validate_command(app, run);
  add_plan_command(app, run);
  add_graph_command(app, run);
  add_apply_command(app, run);
  add_resume_command(app, run);
  add_retry_command(app, run);
  add_runs_command(app, run);
  add_show_command(app, run);
  add_status_command(app, run);
  add_report_command(app, run);
  add_rehearse_command(app, run);
  add_approve_command(app, run);
  add_abort_command(app, run);
  add_pause_command(app, run);
  add_state_command(app, run);
  add_sim_command(app, run);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() != 0) {
      if (auto hint = typo_hint(app, argc, argv)) {
        std::cerr << *hint << "\n";
        return kExitInvalidInput;
      }
    }
    const int code = app.exit(e);
    return code == 0 ? kExitOk : kExitInvalidInput;
  }
  if (!run) return kExitInvalidInput;
  // The one error path: whatever a command could not do (the state database, the
  // filesystem, a lost lease, a bug) ends here as a message and exit 1, never as
  // std::terminate. Every write before it was a committed transaction, so the state is
  // consistent and a run can be resumed.
  try {
    rollout::runner::check_test_hooks();
    return run();
  } catch (const CommandError& e) {
    if (*e.what()) std::cerr << "rollout: " << e.what() << "\n";
    return e.exit_code;
  } catch (const rollout::runner::RunError& e) {
    std::cerr << (e.formatted ? "" : "rollout: ") << e.what() << "\n";
    return e.kind == rollout::runner::RunError::Kind::input ? kExitInvalidInput : kExitError;
  } catch (const std::exception& e) {
    std::cerr << "rollout: error: " << e.what() << "\n";
  } catch (...) {
    std::cerr << "rollout: error: an unexpected failure\n";
  }
  return kExitError;
}
