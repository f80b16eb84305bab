#include "cli/console.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/review.h"
#include "view/progress.h"
#include "view/text.h"

namespace rollout::cli {

ConsoleMode console_mode(bool json, bool quiet, bool no_progress) {
  if (json) return ConsoleMode::json;
  if (quiet) return ConsoleMode::quiet;
  const char* no_color = std::getenv("NO_COLOR");
  if (no_progress || (no_color && *no_color) || !isatty(STDOUT_FILENO)) return ConsoleMode::plain;
  return ConsoleMode::live;
}

namespace {

using Json = nlohmann::ordered_json;

}  // namespace

int terminal_width() {
  winsize ws{};
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  if (const char* columns = std::getenv("COLUMNS")) {
    if (int n = std::atoi(columns); n > 0) return n;
  }
  // Piped or redirected: nothing to fit, nothing is cut.
  return kNoWidthLimit;
}

struct Console::Impl {
  Impl(asio::io_context& io, const Clock& c, const plan::Plan& p, view::RunProgress run,
       ConsoleMode m)
      : timer(io), clock(c), plan(p), mode(m), progress(std::move(run)) {}

  asio::steady_timer timer;
  const Clock& clock;
  const plan::Plan& plan;
  ConsoleMode mode;
  view::RunProgress progress;
  int drawn = 0;  // lines of the progress block now on the screen
  bool ended = false;
  std::map<std::string, std::string> last_gate_line;

  void emit(const Json& j) {
    std::cout << j.dump(-1, ' ', false, Json::error_handler_t::replace) << "\n" << std::flush;
  }

  // Live mode: the block is erased, something is printed above it, and it is drawn again.
  void erase() {
    std::cout << view::erase_lines_above(drawn);
    drawn = 0;
  }
  void draw(bool all_stages = false) {
    view::Style style;
    style.width = terminal_width();
    style.color = true;
    style.all_stages = all_stages;
    for (const std::string& line : view::render(plan, progress, clock.now(), style)) {
      std::cout << line << "\n";
      ++drawn;
    }
    std::cout << std::flush;
  }
  void redraw() {
    erase();
    draw();
  }
  void tick() {
    timer.expires_after(std::chrono::seconds(1));
    timer.async_wait([this](const boost::system::error_code& ec) {
      if (ec || ended) return;
      redraw();
      tick();
    });
  }
};

Console::Console(asio::io_context& io, const Clock& clock, const plan::Plan& plan,
                 view::RunProgress progress, ConsoleMode mode)
    : impl_(std::make_unique<Impl>(io, clock, plan, std::move(progress), mode)) {}

Console::~Console() {
  impl_->timer.cancel();
}

void Console::begin(bool resumed) {
  Impl& c = *impl_;
  if (c.mode == ConsoleMode::json) {
    Json stages = Json::array();
    for (const auto& s : c.plan.stages) stages.push_back(s.name);
    c.emit({{"type", "run"},
            {"v", 1},
            {"time", iso_time(c.clock.now())},
            {"run", c.progress.run_id},
            {"plan", c.plan.name},
            {"resumed", resumed},
            {"stages", stages}});
  }
  if (c.mode == ConsoleMode::live) {
    c.draw();
    c.tick();
  }
}

void Console::end(engine::Ending ending, const std::string& reason, int exit_code) {
  Impl& c = *impl_;
  c.ended = true;
  c.timer.cancel();
  if (c.mode == ConsoleMode::json) {
    c.emit({{"type", "end"},
            {"time", iso_time(c.clock.now())},
            {"run", c.progress.run_id},
            {"ending", engine::name(ending)},
            {"reason", reason},
            {"exit_code", exit_code}});
  }
  if (c.mode == ConsoleMode::live) {
    c.erase();
    c.draw(/*all_stages=*/true);
  }
}

void Console::on_event(const state::Event& e) {
  Impl& c = *impl_;
  view::apply(c.progress, e, kRecentEventLines);
  switch (c.mode) {
    case ConsoleMode::json:
      c.emit({{"type", "event"},
              {"time", iso_time(e.at)},
              {"run", c.progress.run_id},
              {"stage", e.stage},
              {"kind", e.kind},
              {"message", e.message}});
      return;
    case ConsoleMode::quiet:
      return;
    case ConsoleMode::live:
      c.erase();
      break;
    case ConsoleMode::plain:
      break;
  }
  std::cout << fmt::format("{}  {:<12} {}: {}\n", local_time(e.at).substr(11),
                           e.stage.empty() ? "run" : e.stage, e.kind, e.message);
  if (c.mode == ConsoleMode::live && !c.ended) c.draw();
  std::cout << std::flush;
}

void Console::on_observation(const state::Observation& o) {
  Impl& c = *impl_;
  view::apply(c.progress, o);
  switch (c.mode) {
    case ConsoleMode::json: {
      nlohmann::ordered_json line{
          {"type", "gate"}, {"time", iso_time(o.at)}, {"run", c.progress.run_id}};
      const nlohmann::ordered_json fields = observation_json(o);
      for (const auto& [key, value] : fields.items()) {
        if (key != "time") line[key] = value;
      }
      c.emit(line);
      return;
    }
    case ConsoleMode::quiet:
      return;
    case ConsoleMode::live:
      c.redraw();
      return;
    case ConsoleMode::plain: {
      std::string line = fmt::format("{}/{} success, {} failed", o.success, o.targeted, o.failed);
      if (o.lost > 0) line += fmt::format(", {} lost", o.lost);
      line += fmt::format(", {} updating", o.pending + o.in_progress);
      if (o.missing > 0) line += fmt::format(", {} missing", o.missing);
      const std::string key = fmt::format("{}/{}", line, state::name(o.verdict));
      if (c.last_gate_line[o.stage] == key) return;  // only changes
      c.last_gate_line[o.stage] = key;
      std::cout << fmt::format("{}  {:<12} gate: {} ({})\n", local_time(o.at).substr(11), o.stage,
                               line, state::name(o.verdict))
                << std::flush;
      return;
    }
  }
}

void Console::on_stage(const state::StageRecord& s, WallTime at) {
  Impl& c = *impl_;
  view::apply(c.progress, s);
  if (c.mode == ConsoleMode::json) {
    c.emit({{"type", "stage"},
            {"time", iso_time(at)},
            {"run", c.progress.run_id},
            {"stage", s.name},
            {"status", s.status},
            {"reason", s.reason},
            {"started", optional_time(s.started_at)},
            {"dispatched", optional_time(s.dispatched_at)},
            {"finished", optional_time(s.finished_at)}});
  }
  if (c.mode == ConsoleMode::live) c.redraw();
}

void Console::on_run(state::RunStatus status, const std::string& reason, WallTime) {
  view::apply(impl_->progress, status, reason);
}

void Console::on_snapshot(const std::string& stage, std::size_t devices) {
  Impl& c = *impl_;
  view::apply_snapshot(c.progress, stage, static_cast<std::int64_t>(devices));
  if (c.mode == ConsoleMode::live) c.redraw();
}

}  // namespace rollout::cli
