#include "sim/journal.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "upswift/api.h"

namespace rollout::sim {

using Json = nlohmann::json;

std::string journal_header_line(const JournalHeader& h) {
  return Json{{"rollout_simulated_fleet", 1},
              {"fleet", h.fleet_path},
              {"fleet_sha256", h.fleet_sha256},
              {"created_ms", h.created.count()},
              {"time_scale", h.time_scale}}
             .dump() +
         "\n";
}

std::optional<Journal> read_journal(std::string_view text, std::string* why) {
  Journal out;
  bool header = false;
  std::size_t line_no = 0;
  while (!text.empty()) {
    const std::size_t end = text.find('\n');
    if (end == std::string_view::npos) break;  // cut short: never answered
    const std::string_view line = text.substr(0, end);
    text.remove_prefix(end + 1);
    ++line_no;
    Json j;
    try {
      j = Json::parse(line);
    } catch (const std::exception&) {
      if (why) *why = fmt::format("line {} is not JSON", line_no);
      return std::nullopt;
    }
    if (!header) {
      if (!j.is_object() || !j.contains("rollout_simulated_fleet") ||
          !j.value("fleet", Json()).is_string() || !j.value("created_ms", Json()).is_number()) {
        if (why) *why = "its first line does not name a simulated fleet";
        return std::nullopt;
      }
      out.header = {j["fleet"].get<std::string>(), j.value("fleet_sha256", ""),
                    SimTime(j["created_ms"].get<std::int64_t>()), 1.0};
      if (const auto scale = j.value("time_scale", Json()); scale.is_number() && scale > 0)
        out.header.time_scale = scale.get<double>();
      out.last = out.header.created;
      header = true;
      continue;
    }
    if (!j.is_object() || !j.value("sim_ms", Json()).is_number_integer()) {
      if (why) *why = fmt::format("line {} is not a request of the simulator's log", line_no);
      return std::nullopt;
    }
    const SimTime at(j["sim_ms"].get<std::int64_t>());
    out.last = std::max(out.last, at);
    if (j.value("endpoint", "") != "deploy_update" || !j.value("applied", false)) continue;
    const Json& body = j["body"];
    auto parsed =
        upswift::parse_deploy_update(body.is_string() ? body.get<std::string>() : body.dump());
    if (!parsed.parsed) {
      if (why) *why = fmt::format("line {}: {}", line_no, parsed.error);
      return std::nullopt;
    }
    out.applied.push_back({at, std::move(parsed.parsed->request)});
  }
  if (!header) {
    if (why) *why = "it is empty";
    return std::nullopt;
  }
  return out;
}

void replay(Fleet& fleet, const Journal& journal) {
  for (const JournalEntry& e : journal.applied) fleet.deploy(e.request, e.at);
}

}  // namespace rollout::sim
