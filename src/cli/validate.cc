// rollout validate PLAN...: every diagnostic of every file, exit 2 if any has an error.
#include <algorithm>
#include <filesystem>
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
  cmd->add_option("plans", *files, "Plan files (YAML), or folders: every .yaml/.yml in them")
      ->required();
  cmd->footer(
      "Every problem of a file is reported at once as FILE:LINE:COL: error: MESSAGE.\n"
      "Exit 0 when every plan is valid, 2 otherwise.\n\n"
      "Health gates, in a plan: a gate's max_lost (default 0) and lost_after (default 15m) fail a\n"
      "stage at once when more of its devices went dark mid-update; abort_when: {failed: 3%,\n"
      "lost: 1%, min_finished: 50} stops the whole run; ramp: {steps: [1%, 5%, 25%, 100%]} or\n"
      "{from: 1%, factor: 2} makes a stage consecutive sampled waves (eu@1%, eu@5% ...). The\n"
      "README's plan language says more; schema/plan.schema.json has every key.");
  cmd->callback([files, &run] {
    run = [files] {
      int code = kExitOk;
      std::vector<std::string> plans;
      for (const std::string& given : *files) {
        std::error_code ec;
        if (!std::filesystem::is_directory(given, ec)) {
          plans.push_back(given);
          continue;
        }
        std::vector<std::string> inside;
        for (const auto& entry : std::filesystem::directory_iterator(given, ec)) {
          const auto ext = entry.path().extension();
          if (entry.is_regular_file() && (ext == ".yaml" || ext == ".yml"))
            inside.push_back(entry.path().string());
        }
        std::sort(inside.begin(), inside.end());
        if (inside.empty()) {
          std::cerr << fmt::format("{}: error: a folder with no .yaml or .yml file in it\n", given);
          code = kExitInvalidInput;
        }
        plans.insert(plans.end(), inside.begin(), inside.end());
      }
      for (const std::string& file : plans) {
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
