// The plan's schedule and webhooks, read with exact positions: maintenance windows
// ("HH:MM" in a named time zone, days of the week), freezes (moments in a zone) and the
// notify list (https only, plain http only to this machine).
#include <algorithm>
#include <charconv>
#include <set>

#include <fmt/format.h>

#include "plan/keys.h"
#include "plan/readers.h"
#include "util/safe_text.h"
#include "util/suggest.h"
#include "util/tz.h"

namespace rollout::plan::detail {

using yaml::Node;
using yaml::Reader;

// "HH:MM", 00:00 to 24:00, as minutes after midnight.
static std::optional<int> read_clock_time(Reader& r, const Node& n, std::string_view what) {
  auto text = r.string(n, what);
  if (!text) return std::nullopt;
  int h = -1, m = -1;
  const bool shaped =
      text->size() == 5 && (*text)[2] == ':' &&
      std::from_chars(text->data(), text->data() + 2, h).ptr == text->data() + 2 &&
      std::from_chars(text->data() + 3, text->data() + 5, m).ptr == text->data() + 5;
  if (!shaped || h < 0 || m < 0 || m > 59 || h > 24 || (h == 24 && m != 0)) {
    r.diagnostics().error(n.mark, fmt::format("{} must be a time of day such as \"02:00\" "
                                              "(00:00 to 24:00), got '{}'",
                                              what, *text));
    return std::nullopt;
  }
  return h * 60 + m;
}

static std::optional<std::string> read_zone(Reader& r, const Node& map, std::string_view what) {
  const Node* tz = r.required(map, "tz", what);
  if (!tz) return std::nullopt;
  auto zone = r.string(*tz, "tz");
  if (zone && !time_zone_exists(*zone)) {
    r.diagnostics().error(tz->mark, fmt::format("unknown time zone '{}': use a name from the "
                                                "tz database such as Europe/Berlin, or UTC",
                                                *zone));
    return std::nullopt;
  }
  return zone;
}

std::vector<Window> read_windows(Reader& r, const Node& n, const std::string& where) {
  std::vector<Window> out;
  if (!n.is_sequence()) {
    r.diagnostics().error(n.mark, fmt::format("windows of {} must be a list of {{days, from, to, "
                                              "tz}}, got {}",
                                              where, yaml::describe(n)));
    return out;
  }
  for (const Node& item : n.items) {
    const std::string what = fmt::format("a window of {}", where);
    if (!r.map(item, keys::kWindow, what)) continue;
    Window w;
    bool ok = true;
    if (const Node* days = item.find("days")) {
      if (!days->is_sequence()) {
        r.diagnostics().error(days->mark, fmt::format("days must be a list such as [mon, tue], "
                                                      "got {}",
                                                      yaml::describe(*days)));
        ok = false;
      } else {
        for (const Node& day_node : days->items) {
          auto day = r.string(day_node, "a day");
          if (!day) {
            ok = false;
            continue;
          }
          const auto it = std::find(keys::kDays.begin(), keys::kDays.end(), *day);
          if (it == keys::kDays.end()) {
            r.diagnostics().error(day_node.mark, fmt::format("unknown day '{}'{}; the days are {}",
                                                             *day, did_you_mean(*day, keys::kDays),
                                                             Reader::join(keys::kDays)));
            ok = false;
          } else {
            w.days.push_back(static_cast<int>(it - keys::kDays.begin()));
          }
        }
      }
    }
    const Node* from = r.required(item, "from", what);
    const Node* to = r.required(item, "to", what);
    // -1: missing or malformed (already reported).
    const int f = from ? read_clock_time(r, *from, "from").value_or(-1) : -1;
    const int t = to ? read_clock_time(r, *to, "to").value_or(-1) : -1;
    auto zone = read_zone(r, item, what);
    if (f < 0 || t < 0 || !zone || !ok) continue;
    if (f == t) {
      r.diagnostics().error(item.mark, fmt::format("{} opens and closes at the same time", what));
      continue;
    }
    // 24:00 is the next midnight: from 00:00 to 24:00 is the whole day.
    w.from = f % (24 * 60);
    w.to = t % (24 * 60);
    w.tz = *zone;
    out.push_back(std::move(w));
  }
  return out;
}

// "2026-12-20" or "2026-12-20 18:00", local in `zone`. A date alone is its midnight, or,
// for the end of a freeze, the midnight after it (the day is included).
static std::optional<WallTime> read_moment(Reader& r, const Node& n, std::string_view what,
                                           const std::string& zone, bool end) {
  auto text = r.string(n, what);
  if (!text) return std::nullopt;
  int y = 0, mo = 0, d = 0, minute = 0;
  bool ok = text->size() >= 10 && (*text)[4] == '-' && (*text)[7] == '-';
  ok = ok && std::from_chars(text->data(), text->data() + 4, y).ptr == text->data() + 4 &&
       std::from_chars(text->data() + 5, text->data() + 7, mo).ptr == text->data() + 7 &&
       std::from_chars(text->data() + 8, text->data() + 10, d).ptr == text->data() + 10;
  ok = ok && y >= 2000 && y <= 2200 && mo >= 1 && mo <= 12 && d >= 1 && d <= 31;
  bool date_only = text->size() == 10;
  if (ok && !date_only) {
    int h = -1, m = -1;
    ok = text->size() == 16 && ((*text)[10] == ' ' || (*text)[10] == 'T') && (*text)[13] == ':' &&
         std::from_chars(text->data() + 11, text->data() + 13, h).ptr == text->data() + 13 &&
         std::from_chars(text->data() + 14, text->data() + 16, m).ptr == text->data() + 16 &&
         h >= 0 && h <= 23 && m >= 0 && m <= 59;
    minute = h * 60 + m;
  }
  if (!ok) {
    r.diagnostics().error(n.mark, fmt::format("{} must be a date such as \"2026-12-20\" or a "
                                              "date and time such as \"2026-12-20 18:00\", "
                                              "got '{}'",
                                              what, *text));
    return std::nullopt;
  }
  return from_local(y, mo, date_only && end ? d + 1 : d, minute, zone);
}

std::vector<Freeze> read_freezes(Reader& r, const Node& n, const std::string& where) {
  std::vector<Freeze> out;
  if (!n.is_sequence()) {
    r.diagnostics().error(n.mark, fmt::format("freeze of {} must be a list of {{from, to, tz}}, "
                                              "got {}",
                                              where, yaml::describe(n)));
    return out;
  }
  for (const Node& item : n.items) {
    const std::string what = fmt::format("a freeze of {}", where);
    if (!r.map(item, keys::kFreeze, what)) continue;
    const Node* from = r.required(item, "from", what);
    const Node* to = r.required(item, "to", what);
    auto zone = read_zone(r, item, what);
    auto reason = r.optional_string(item, "reason", "reason");
    if (!from || !to || !zone) continue;
    auto f = read_moment(r, *from, "from", *zone, /*end=*/false);
    auto t = read_moment(r, *to, "to", *zone, /*end=*/true);
    if (!f || !t) continue;
    if (*t <= *f) {
      r.diagnostics().error(to->mark, fmt::format("{} ends ({}) before it begins ({})", what,
                                                  to->scalar, from->scalar));
      continue;
    }
    out.push_back(
        {*f, *t, reason.value_or(""), fmt::format("{} .. {} {}", from->scalar, to->scalar, *zone)});
  }
  return out;
}

// Plain http only to this machine (a local receiver); anything else must be https.
static bool webhook_url_ok(const std::string& url) {
  if (url.starts_with("https://")) return url.size() > 8;
  for (const char* local : {"http://127.0.0.1", "http://localhost", "http://[::1]"}) {
    const std::string_view prefix(local);
    if (url.starts_with(prefix) &&
        (url.size() == prefix.size() || url[prefix.size()] == ':' || url[prefix.size()] == '/'))
      return true;
  }
  return false;
}

std::vector<Webhook> read_notify(Reader& r, const Node& n) {
  std::vector<Webhook> out;
  if (!n.is_sequence()) {
    r.diagnostics().error(n.mark, fmt::format("notify must be a list of {{url, events, format}}, "
                                              "got {}",
                                              yaml::describe(n)));
    return out;
  }
  for (std::size_t i = 0; i < n.items.size(); ++i) {
    const Node& item = n.items[i];
    const std::string what = fmt::format("notify #{}", i + 1);
    if (!r.map(item, keys::kNotify, what)) continue;
    Webhook w;
    if (const Node* url = r.required(item, "url", what)) {
      if (auto v = r.string(*url, "url", yaml::Reader::kMaxUrl)) {
        if (!refuse_credentials(r, *url, *v, "webhook url") && !webhook_url_ok(*v)) {
          r.diagnostics().error(url->mark, fmt::format("webhook url must be https:// (plain "
                                                       "http only to 127.0.0.1 or localhost), "
                                                       "got '{}'",
                                                       *v));
        }
        w.url = *v;
      }
    }
    if (const Node* events = item.find("events")) {
      if (!events->is_sequence()) {
        r.diagnostics().error(events->mark,
                              "events must be a list such as [run_failed, "
                              "stage_failed]");
      } else {
        for (const Node& e : events->items) {
          if (auto v = r.choice(e, "event", keys::kNotifyEvents)) w.events.push_back(*v);
        }
      }
    }
    if (const Node* format = item.find("format")) {
      if (auto v = r.choice(*format, "format", keys::kNotifyFormats))
        w.format = *v == "slack" ? Webhook::Format::slack : Webhook::Format::json;
    }
    out.push_back(std::move(w));
  }
  return out;
}

bool refuse_credentials(yaml::Reader& r, const yaml::Node& n, const std::string& url,
                        std::string_view what) {
  if (!url_user_info(url)) return false;
  r.diagnostics().error(
      n.mark, fmt::format("{} '{}' carries credentials (user:password@): a plan is printed, "
                          "reviewed and stored, so it holds no secret; remove them",
                          what, without_credentials(url)));
  return true;
}

}  // namespace rollout::plan::detail
