// rollout state migrate: a state database copied into another (a SQLite file into a team's
// PostgreSQL server, or back), verified by counts and hashes before it commits.
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "cli/command.h"
#include "cli/exit_codes.h"
#include "cli/session.h"
#include "store/state_copy.h"

namespace rollout::cli {

namespace {

struct MigrateOptions {
  std::string from;
  std::string to;
};

int run_migrate(const MigrateOptions& o) {
  if (o.from == o.to)
    throw CommandError(kExitInvalidInput, "--from and --to name the same state database");
  auto from = open_store(StateOptions{o.from});
  // A SQLite destination made for the copy is removed again when the copy is refused or
  // fails: a refused migrate leaves nothing behind.
  std::error_code ignored;
  const bool made = !store::is_postgres_url(o.to) && !std::filesystem::exists(o.to, ignored);
  auto to = open_store(StateOptions{o.to}, /*create=*/true);
  store::CopyReport report;
  try {
    report = store::copy_state(*from, *to, std::chrono::system_clock::now(), lease_stale_after());
  } catch (const store::StoreError& e) {
    if (made) {
      to.reset();
      for (const char* suffix : {"", "-wal", "-shm"})
        std::filesystem::remove(o.to + suffix, ignored);
    }
    throw CommandError(kExitError, e.what());
  }
  // A run against an in-process simulator goes on only with its fleet's record: it goes
  // where the run goes (beside a SQLite file; this user's state folder for a server).
  int journals = 0;
  std::vector<std::string> not_copied;
  for (const std::string& id : report.runs) {
    const std::string src = runner::sim_journal_path(resolve_state_path(StateOptions{o.from}), id);
    const std::string dst = runner::sim_journal_path(resolve_state_path(StateOptions{o.to}), id);
    if (src == dst || !std::filesystem::exists(src, ignored)) continue;
    std::filesystem::create_directories(std::filesystem::path(dst).parent_path(), ignored);
    std::error_code ec;
    std::filesystem::copy_file(src, dst, std::filesystem::copy_options::skip_existing, ec);
    if (ec) {
      not_copied.push_back(fmt::format("cp {} {} ({})", src, dst, ec.message()));
    } else {
      ++journals;
    }
  }
  std::cout << fmt::format("copied {} run(s) from {} to {}, verified:\n", report.runs.size(),
                           from->name(), to->name());
  for (const auto& t : report.tables) {
    std::cout << fmt::format("  {:<17} {:>8} rows  sha256 {}  (the same in both)\n", t.name, t.rows,
                             t.sha256.substr(0, 16));
  }
  if (journals > 0)
    std::cout << fmt::format("  and the simulated fleets' records of {} run(s)\n", journals);
  if (!not_copied.empty()) {
    std::string lines;
    for (const auto& l : not_copied) lines += "\n  " + l;
    throw CommandError(kExitError,
                       fmt::format("the runs were copied, but not the simulated fleets' records "
                                   "of {} of them: copy each by hand before resuming it:{}",
                                   not_copied.size(), lines));
  }
  // o.to carries no password: a URL with one was refused on opening.
  std::cout << fmt::format("the runs are in both now; point --state (or ROLLOUT_STATE) at {}\n",
                           o.to);
  return kExitOk;
}

}  // namespace

void add_state_command(CLI::App& app, Run& run) {
  CLI::App* state = app.add_subcommand("state", "Work on a state database as a whole.");
  state->require_subcommand(1);
  auto o = std::make_shared<MigrateOptions>();
  CLI::App* migrate = state->add_subcommand(
      "migrate",
      "Copy every run of one state database into another (a SQLite file into PostgreSQL, or "
      "back), in one transaction that commits only when every table's row count and sha256 "
      "match the source's. A destination that holds other runs keeps them: the copied runs join "
      "them. Refused, with nothing written (a SQLite file made for it is removed), while a run "
      "of the source is being run, or when one of its run ids is in the destination already. "
      "The password comes from PGPASSWORD, ~/.pgpass or a service file, never from the URL.");
  migrate->add_option("--from", o->from, "The state to copy: a SQLite path or a PostgreSQL URL")
      ->required();
  migrate
      ->add_option("--to", o->to,
                   "Where to copy it: postgresql://USER@HOST:PORT/DB (the database must exist) "
                   "or a SQLite path (created when missing)")
      ->required();
  migrate->callback([o, &run] { run = [o] { return run_migrate(*o); }; });
}

}  // namespace rollout::cli
