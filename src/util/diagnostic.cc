#include "util/diagnostic.h"

#include <algorithm>

#include <fmt/format.h>

namespace rollout {

void Diagnostics::error(Mark mark, std::string message) {
  ++error_count_;
  add({mark, Severity::error, std::move(message)});
}

void Diagnostics::warning(Mark mark, std::string message) {
  ++warning_count_;
  add({mark, Severity::warning, std::move(message)});
}

void Diagnostics::add(Diagnostic d) {
  if (items_.size() >= kMaxReported) {
    ++dropped_;
    return;
  }
  items_.push_back(std::move(d));
}

std::vector<Diagnostic> Diagnostics::sorted() const {
  std::vector<Diagnostic> out = items_;
  std::stable_sort(out.begin(), out.end(),
                   [](const Diagnostic& a, const Diagnostic& b) { return a.mark < b.mark; });
  return out;
}

std::string format_diagnostic(const std::string& file, const Diagnostic& d) {
  const char* severity = d.severity == Severity::error ? "error" : "warning";
  if (d.mark.line == 0) return fmt::format("{}: {}: {}", file, severity, d.message);
  return fmt::format("{}:{}:{}: {}: {}", file, d.mark.line, d.mark.column, severity, d.message);
}

std::string Diagnostics::format(const std::string& file) const {
  std::string out;
  for (const Diagnostic& d : sorted()) {
    out += format_diagnostic(file, d);
    out += '\n';
  }
  if (dropped_ > 0) {
    out += fmt::format("{}: note: {} more diagnostics not shown (only the first {} are)\n", file,
                       dropped_, kMaxReported);
  }
  return out;
}

}  // namespace rollout
