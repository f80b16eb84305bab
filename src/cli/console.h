// What `rollout apply` and `resume` print while a run goes: a live progress block on a
// terminal, plain timestamped lines elsewhere, or the JSON event stream (--output json).
#pragma once

#include <memory>
#include <string>

#include "engine/engine.h"
#include "plan/model.h"
#include "util/asio.h"
#include "util/clock.h"
#include "view/progress.h"

namespace rollout::cli {

enum class ConsoleMode {
  live,   // a terminal: events scroll above a progress block redrawn in place
  plain,  // timestamped lines, no escape codes (not a terminal, NO_COLOR, --no-progress)
  json,   // one JSON object per line: the documented event stream
  quiet,
};

// live when stdout is a terminal and neither NO_COLOR nor `no_progress` says otherwise.
ConsoleMode console_mode(bool json, bool quiet, bool no_progress);

// Columns of the terminal on stdout ($COLUMNS when it is not one; else no limit).
inline constexpr int kNoWidthLimit = 1 << 20;
int terminal_width();

class Console : public engine::Observer {
 public:
  Console(asio::io_context& io, const Clock& clock, const plan::Plan& plan,
          view::RunProgress progress, ConsoleMode mode);
  ~Console() override;

  void begin(bool resumed);
  void end(engine::Ending ending, const std::string& reason, int exit_code);

  void on_event(const state::Event& e) override;
  void on_observation(const state::Observation& o) override;
  void on_stage(const state::StageRecord& s, WallTime at) override;
  void on_snapshot(const std::string& stage, std::size_t devices) override;
  void on_run(state::RunStatus status, const std::string& reason, WallTime at) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace rollout::cli
