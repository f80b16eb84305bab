#include "view/report.h"

#include <algorithm>
#include <array>

#include <fmt/format.h>

#include "engine/gate.h"
#include "util/duration.h"
#include "util/time_text.h"
#include "view/progress.h"
#include "view/timeline.h"

namespace rollout::view {

std::string html_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

namespace {

using std::chrono::duration_cast;

std::string esc(const std::string& s) {
  return html_escape(s);
}

// A status's word: safe in HTML as it is.
template <typename E>
std::string word(E status) {
  return std::string(state::name(status));
}

std::string offset(WallTime from, WallTime at) {
  const auto d = duration_cast<Seconds>(at - from);
  return d.count() < 0 ? "-" + format_duration(-d) : "+" + format_duration(d);
}

constexpr const char* kStyle = R"css(
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px auto;max-width:1100px;color:#1d2330;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #dde2ea;padding-bottom:4px}
h3{font-size:15px;margin:18px 0 4px}
.meta{color:#5a6475}.status{display:inline-block;padding:1px 8px;border-radius:10px;font-weight:600;color:#fff}
.s-completed,.s-passed{background:#2e8540}.s-stopped,.s-failed,.s-aborted,.s-rolled_back,.s-rollback_failed{background:#c62828}
.s-paused,.s-awaiting_approval,.s-interrupted,.s-running,.s-gating,.s-dispatching{background:#b26a00}
.s-waiting{background:#8a93a3}
.device{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff}.s-missing,.s-unlisted,.s-other{background:#6a1b9a}.s-lost{background:#263238}.s-pending,.s-in_progress{background:#b26a00}
table{border-collapse:collapse;width:100%;font-size:13px}th,td{text-align:left;padding:3px 8px;border-bottom:1px solid #eef0f4;vertical-align:top}
th{background:#f5f7fa}td.n{text-align:right;font-variant-numeric:tabular-nums}
svg{display:block;max-width:100%;height:auto}svg text{font:11px system-ui,sans-serif;fill:#39414f}
.legend span{display:inline-block;margin-right:14px}.legend i{display:inline-block;width:10px;height:10px;margin-right:4px;vertical-align:-1px}
code{font-size:12px;background:#f5f7fa;padding:1px 4px;border-radius:3px}
)css";

// Colours of the chart layers and timeline segments.
const char* segment_colour(const std::string& kind) {
  if (kind == "approval") return "#7e57c2";
  if (kind == "dispatch") return "#1e88e5";
  if (kind == "bake") return "#80cbc4";
  if (kind == "gate") return "#26a69a";
  if (kind == "paused") return "#ffb300";
  if (kind == "rollback") return "#e53935";
  return "#9e9e9e";
}

struct Axis {
  WallTime from;
  double span_ms = 1;
  double x0 = 0, width = 1;
  double x(WallTime t) const {
    const double ms = static_cast<double>(duration_cast<Millis>(t - from).count());
    return x0 + width * std::clamp(ms / span_ms, 0.0, 1.0);
  }
};

// A tick every so often: the smallest step that keeps the axis to about eight labels.
Seconds tick_step(double span_ms) {
  static constexpr std::array<long, 15> steps{1,    5,    10,   30,    60,    300,   600,   900,
                                              1800, 3600, 7200, 21600, 43200, 86400, 604800};
  for (long s : steps) {
    if (span_ms / (static_cast<double>(s) * 1000.0) <= 8) return Seconds{s};
  }
  return Seconds{604800};
}

std::string gantt(const ReportInput& in, const std::vector<Segment>& segments, WallTime end) {
  constexpr double kLabel = 150, kWidth = 1000, kRow = 26, kTop = 24;
  const double height = kTop + kRow * static_cast<double>(in.stages.size()) + 24;
  Axis axis{
      in.run.created_at,
      std::max(1.0, static_cast<double>(duration_cast<Millis>(end - in.run.created_at).count())),
      kLabel, kWidth - kLabel - 10};
  std::string svg = fmt::format(
      R"(<svg class="gantt" viewBox="0 0 {} {}" width="{}" height="{}" role="img" aria-label="timeline of stages">)",
      kWidth, height, kWidth, height);
  const Seconds step = tick_step(axis.span_ms);
  for (Seconds t{0}; static_cast<double>(t.count()) * 1000 <= axis.span_ms; t += step) {
    const double x = axis.x(in.run.created_at + t);
    svg += fmt::format(
        R"(<line x1="{:.1f}" y1="{}" x2="{:.1f}" y2="{}" stroke="#e3e7ee"/><text x="{:.1f}" y="14" text-anchor="middle">+{}</text>)",
        x, kTop - 4, x, height - 20, x, format_duration(t));
  }
  for (std::size_t i = 0; i < in.stages.size(); ++i) {
    const double y = kTop + kRow * static_cast<double>(i);
    const auto& st = in.stages[i];
    svg += fmt::format(R"(<text x="4" y="{:.1f}">{}</text>)", y + 16, esc(st.name));
    for (const Segment& seg : segments) {
      if (seg.stage != st.name) continue;
      const double x1 = axis.x(seg.from);
      const double w = std::max(2.0, axis.x(seg.to) - x1);
      svg += fmt::format(
          R"(<rect class="segment" data-kind="{}" x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{}" rx="3" fill="{}"><title>{} {}: {} to {} ({})</title></rect>)",
          seg.kind, x1, y + 4, w, kRow - 8, segment_colour(seg.kind), esc(st.name), seg.kind,
          offset(in.run.created_at, seg.from), offset(in.run.created_at, seg.to),
          format_duration(duration_cast<Seconds>(seg.to - seg.from)));
    }
    // The gate's decisions on the stage's row: a mark where each verdict fell.
    for (const auto& o : in.observations) {
      if (o.stage != st.name || o.verdict == state::Verdict::wait) continue;
      const char* colour = o.verdict == state::Verdict::pass ? "#2e7d32" : "#c62828";
      svg += fmt::format(
          R"(<circle class="decision" cx="{:.1f}" cy="{:.1f}" r="5" fill="{}" stroke="#fff"><title>{} gate {} at {}: {}</title></circle>)",
          axis.x(o.at), y + kRow / 2, colour, esc(st.name), word(o.verdict),
          offset(in.run.created_at, o.at), esc(o.reason));
    }
  }
  svg += "</svg>";
  std::string legend = R"(<p class="legend">)";
  for (const char* kind : {"approval", "dispatch", "bake", "gate", "paused", "rollback"}) {
    legend += fmt::format(R"(<span><i style="background:{}"></i>{}</span>)", segment_colour(kind),
                          kind == std::string("approval") ? "waiting for approval" : kind);
  }
  legend +=
      R"(<span><i style="background:#2e7d32;border-radius:5px"></i>gate passed</span>)"
      R"(<span><i style="background:#c62828;border-radius:5px"></i>gate failed / timed out</span></p>)";
  return svg + legend;
}

// Device statuses over time since dispatch, as stacked areas, with the line of successes
// the gate needs.
std::string stage_chart(const ReportInput& in, const state::StageRecord& st) {
  std::vector<const state::Observation*> obs;
  for (const auto& o : in.observations) {
    if (o.stage == st.name) obs.push_back(&o);
  }
  if (obs.empty())
    return R"(<p class="meta">No gate observations (the stage was not dispatched).</p>)";
  constexpr double kW = 1000, kH = 180, kLeft = 50, kBottom = 24, kTop = 8;
  const double plot_w = kW - kLeft - 10, plot_h = kH - kBottom - kTop;
  const double max_ms = std::max<double>(1.0, static_cast<double>(obs.back()->elapsed_ms));
  const double targeted = std::max<double>(1.0, static_cast<double>(obs.back()->targeted));
  auto x = [&](const state::Observation* o) {
    return kLeft + plot_w * static_cast<double>(o->elapsed_ms) / max_ms;
  };
  auto y = [&](double n) { return kTop + plot_h * (1.0 - n / targeted); };
  // Layers from the bottom: success, failed (+aborted), in_progress, pending (+missing).
  struct Layer {
    const char* name;
    const char* colour;
    std::int64_t (*count)(const state::Observation&);
  };
  const std::array<Layer, 5> layers{{
      {"success", "#43a047", [](const state::Observation& o) { return o.success; }},
      {"failed", "#e53935", [](const state::Observation& o) { return o.failed + o.aborted; }},
      {"lost", "#263238", [](const state::Observation& o) { return o.lost; }},
      {"in_progress", "#ffb300", [](const state::Observation& o) { return o.in_progress; }},
      {"pending", "#b0bec5", [](const state::Observation& o) { return o.pending + o.missing; }},
  }};
  std::string svg = fmt::format(
      R"(<svg class="stage-chart" data-stage="{}" viewBox="0 0 {} {}" width="{}" height="{}" role="img" aria-label="device statuses of stage {}">)",
      esc(st.name), kW, kH, kW, kH, esc(st.name));
  std::vector<double> below(obs.size(), 0.0);
  for (const Layer& layer : layers) {
    std::string top, bottom;
    std::vector<double> above(obs.size());
    for (std::size_t i = 0; i < obs.size(); ++i) {
      above[i] = below[i] + static_cast<double>(layer.count(*obs[i]));
      top += fmt::format("{:.1f},{:.1f} ", x(obs[i]), y(above[i]));
    }
    for (std::size_t i = obs.size(); i-- > 0;)
      bottom += fmt::format("{:.1f},{:.1f} ", x(obs[i]), y(below[i]));
    svg += fmt::format(R"(<polygon class="layer" data-layer="{}" points="{}{}" fill="{}"/>)",
                       layer.name, top, bottom, layer.colour);
    below = std::move(above);
  }
  if (obs.size() == 1) {  // one observation: a bar, not an area of zero width
    svg += fmt::format(R"(<rect x="{}" y="{}" width="6" height="{}" fill="#43a047"/>)", kLeft, kTop,
                       plot_h);
  }
  for (const std::int64_t tick : axis_ticks(static_cast<std::int64_t>(targeted))) {
    const auto n = static_cast<double>(tick);
    svg += fmt::format(
        R"(<line x1="{}" y1="{:.1f}" x2="{}" y2="{:.1f}" stroke="#ffffff" stroke-opacity=".5"/><text x="{}" y="{:.1f}" text-anchor="end">{}</text>)",
        kLeft, y(n), kW - 10, y(n), kLeft - 6, y(n) + 4, tick);
  }
  if (in.plan) {
    for (const auto& spec : in.plan->stages) {
      if (spec.name != st.name) continue;
      const double needed = static_cast<double>(
          engine::required_successes(spec.gate, static_cast<std::int64_t>(targeted)));
      svg += fmt::format(
          R"(<line class="threshold" x1="{}" y1="{:.1f}" x2="{}" y2="{:.1f}" stroke="#1b5e20" stroke-dasharray="6 4" stroke-width="1.5"><title>the gate needs {:.0f} successes</title></line>)",
          kLeft, y(needed), kW - 10, y(needed), needed);
    }
  }
  const Seconds total = duration_cast<Seconds>(Millis{obs.back()->elapsed_ms});
  svg += fmt::format(
      R"(<text x="{}" y="{}">dispatch</text><text x="{}" y="{}" text-anchor="end">+{} ({} observations)</text></svg>)",
      kLeft, kH - 6, kW - 10, kH - 6, format_duration(total), obs.size());
  std::string legend = R"(<p class="legend">)";
  for (const Layer& layer : layers)
    legend +=
        fmt::format(R"(<span><i style="background:{}"></i>{}</span>)", layer.colour, layer.name);
  legend += R"(<span>- - - successes the gate needs</span></p>)";
  return svg + legend;
}

// Devices that did not succeed, as their gate last saw them.
std::string unsuccessful_devices(const ReportInput& in) {
  std::string rows;
  std::size_t n = 0;
  for (const auto& d : in.device_states) {
    if (!d.status || (*d.status == state::DeviceStatus::success && !d.lost_at)) continue;
    ++n;
    // A lost device: its own colour, since when, and its update's status beside.
    const std::string status = d.lost_at ? "lost" : std::string(word(*d.status));
    rows += fmt::format(
        "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td class=\"n\">{}</td>"
        "<td><span class=\"device s-{}\">{}</span>{}</td><td>{}</td><td>{}</td></tr>\n",
        esc(d.stage), esc(d.uuid), esc(d.name), esc(d.group),
        d.update_id ? std::to_string(d.update_id) : "-", status, status,
        d.lost_at ? fmt::format(" (update {})", word(*d.status)) : "",
        offset(in.run.created_at, d.lost_at.value_or(d.since)), d.online ? word(*d.online) : "-");
  }
  std::string h = fmt::format("<h2>Devices that did not succeed: {}</h2>\n", n);
  if (rows.empty()) return h + "<p class=\"meta\">None.</p>\n";
  return h +
         "<table class=\"devices\"><tr><th>Stage</th><th>Device</th><th>Name</th><th>Group</th>"
         "<th>Update</th><th>Status</th><th>Since</th><th>Online at the decision</th></tr>\n" +
         rows + "</table>\n";
}

}  // namespace

std::vector<std::int64_t> axis_ticks(std::int64_t max) {
  if (max <= 0) return {0};
  // The smallest of 1, 2, 5, 10, 20, 50 ... that needs no more than four steps.
  std::int64_t step = 1;
  for (std::int64_t scale = 1;; scale *= 10) {
    if (max <= 4 * scale) {
      step = scale;
      break;
    }
    if (max <= 8 * scale) {
      step = 2 * scale;
      break;
    }
    if (max <= 20 * scale) {
      step = 5 * scale;
      break;
    }
  }
  std::vector<std::int64_t> ticks;
  for (std::int64_t t = 0; t <= max; t += step) ticks.push_back(t);
  return ticks;
}

std::string render_report(const ReportInput& in) {
  const WallTime end = report_end(in);
  const std::vector<Segment> segments = timeline_segments(in, end);
  const auto& run = in.run;
  std::string h;
  h += "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">";
  // Nothing is fetched: no scripts, no images, no fonts; the browser is told so.
  h += "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src "
       "'unsafe-inline'\">";
  h += "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">";
  h += fmt::format("<title>rollout run {} · {}</title><style>{}</style></head><body>\n",
                   esc(run.id), esc(run.plan_name), kStyle);
  h += fmt::format("<h1>Run {} <span class=\"status s-{}\">{}</span></h1>\n", esc(run.id),
                   word(run.status), word(run.status));
  h += fmt::format(
      "<p class=\"meta\">Plan <b>{}</b> from <code>{}</code> (sha256 {}) · by {}@{} through {}<br>"
      "Started {} UTC · {} {}{}</p>\n",
      esc(run.plan_name), esc(run.plan_path), esc(run.plan_hash.substr(0, 12)), esc(run.created_by),
      esc(run.host), esc(run.api_url), esc(iso_time(run.created_at)),
      run.finished_at ? "took" : "last update after",
      format_duration(duration_cast<Seconds>(end - run.created_at)),
      run.reason.empty() ? "" : " · " + esc(run.reason));

  h += "<h2>Timeline</h2>\n" + gantt(in, segments, end);

  h += "<h2>Stages</h2>\n<table class=\"stages\"><tr><th>Stage</th><th>Status</th><th>Devices</th>"
       "<th>Gate</th><th>Started</th><th>Dispatched</th><th>Ended</th><th>Reason</th></tr>\n";
  for (const auto& st : in.stages) {
    std::string gate;
    if (in.plan) {
      for (const auto& spec : in.plan->stages) {
        if (spec.name != st.name) continue;
        const auto targets = in.devices.find(st.name);
        gate = fmt::format(
            "{}, bake {}, timeout {}",
            engine::describe_thresholds(spec.gate, targets == in.devices.end()
                                                       ? std::nullopt
                                                       : std::optional(targets->second)),
            format_duration(spec.gate.bake), format_duration(spec.gate.timeout));
      }
    }
    auto when = [&](const std::optional<WallTime>& t) {
      return t ? offset(run.created_at, *t) : std::string("-");
    };
    auto devices = in.devices.find(st.name);
    h += fmt::format(
        "<tr><td>{}</td><td><span class=\"status s-{}\">{}</span></td><td class=\"n\">{}</td>"
        "<td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
        esc(st.name), word(st.status), esc(shown_status(st)),
        devices == in.devices.end() ? "-" : std::to_string(devices->second), esc(gate),
        when(st.started_at), when(st.dispatched_at), when(st.finished_at), esc(st.reason));
  }
  h += "</table>\n";

  h += "<h2>Device statuses by stage</h2>\n";
  for (const auto& st : in.stages) {
    h += fmt::format("<h3>{}</h3>\n", esc(st.name)) + stage_chart(in, st);
  }

  h += unsuccessful_devices(in);

  h += "<h2>Gate decisions</h2>\n";
  std::string rows;
  for (const auto& o : in.observations) {
    if (o.verdict == state::Verdict::wait) continue;
    rows += fmt::format(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>"
        "<td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td>"
        "</tr>\n",
        offset(run.created_at, o.at), esc(o.stage), word(o.verdict), o.targeted, o.success,
        o.failed + o.aborted, o.lost, o.pending + o.in_progress + o.missing, esc(o.reason));
  }
  h += rows.empty() ? "<p class=\"meta\">None yet.</p>\n"
                    : "<table class=\"decisions\"><tr><th>When</th><th>Stage</th><th>Verdict</th>"
                      "<th>Targeted</th><th>Success</th><th>Failed</th><th>Lost</th>"
                      "<th>Updating</th>"
                      "<th>Reason</th></tr>\n" +
                          rows + "</table>\n";

  if (!in.approvals.empty()) {
    h += "<h2>Approvals</h2>\n<table><tr><th>When</th><th>Stage</th><th>By</th><th>Comment</th></"
         "tr>\n";
    for (const auto& a : in.approvals) {
      h += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                       esc(iso_time(a.at)), esc(a.stage), esc(a.by), esc(a.comment));
    }
    h += "</table>\n";
  }

  h += fmt::format("<h2>API calls (deploy_update): {}</h2>\n", in.calls.size());
  if (in.calls.empty()) {
    h += "<p class=\"meta\">None.</p>\n";
  } else {
    h += "<table class=\"calls\"><tr><th>#</th><th>Intent</th><th>Stage</th><th>Kind</th>"
         "<th>Devices</th><th>Outcome</th><th>HTTP</th><th>Marker</th><th>Message</th></tr>\n";
    for (const auto& c : in.calls) {
      h += fmt::format(
          "<tr><td class=\"n\">{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td>"
          "<td>{}</td><td class=\"n\">{}</td><td><code>{}</code></td><td>{}</td></tr>\n",
          c.id, offset(run.created_at, c.intent_at), esc(c.stage), word(c.kind), c.devices,
          c.outcome ? word(*c.outcome) : std::string("no outcome recorded"),
          c.http_status ? std::to_string(c.http_status) : "-", esc(c.marker), esc(c.message));
    }
    h += "</table>\n";
  }

  h += fmt::format(
      "<h2>Events: {}</h2>\n<table class=\"events\"><tr><th>When</th><th>Stage</th>"
      "<th>Kind</th><th>Message</th></tr>\n",
      in.events.size());
  for (const auto& e : in.events) {
    h += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                     offset(run.created_at, e.at), esc(e.stage.empty() ? "run" : e.stage),
                     esc(std::string(state::name(e.kind))), esc(e.message));
  }
  h += "</table>\n<p class=\"meta\">Times are offsets from the run's start (" +
       esc(iso_time(run.created_at)) + "). Made by rollout report.</p>\n</body></html>\n";
  return h;
}

}  // namespace rollout::view
