// rollout validate PLAN...: every diagnostic of every file, exit 2 if any has an error.
#include <iostream>
#include <memory>
#include <vector>

#include <fmt/format.h>

#include "cli/command.h"
#include "cli/exit_codes.h"

namespace rollout::cli {

void add_validate_command(CLI::App& app, Run& run) {
  auto files = std::make_shared<std::vector<std::string>>();
  CLI::App* cmd = app.add_subcommand("validate",
                                     "Check plans: syntax, fields, filters, gates, the "
                                     "DAG. Sends nothing.");
  cmd->add_option("plans", *files, "Plan files (YAML)")->required();
  cmd->footer(
      "Every problem of a file is reported at once as FILE:LINE:COL: error: MESSAGE.\n"
      "Exit 0 when every plan is valid, 2 otherwise.");
  cmd->callback([files, &run] {
    run = [files] {
      int code = kExitOk;
      for (const std::string& file : *files) {
        auto checked = load_checked_plan(file);
        if (!checked) {
          code = kExitInvalidInput;
          continue;
        }
        std::cout << fmt::format("{}: ok: plan '{}', {} stage(s)\n", file, checked->plan.name,
                                 checked->plan.stages.size());
      }
      return code;
    };
  });
}

}  // namespace rollout::cli
