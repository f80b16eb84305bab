// Diagnostics a person can act on: FILE:LINE:COL: error: MESSAGE, all of a file at once.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace rollout {

// A position in a source file, 1-based. line == 0 means "the file as a whole".
struct Mark {
  int line = 0;
  int column = 0;
  auto operator<=>(const Mark&) const = default;
};

enum class Severity { error, warning };

struct Diagnostic {
  Mark mark;
  Severity severity = Severity::error;
  std::string message;
};

// Collects diagnostics for one file. Capped so that a hostile input cannot make
// the report itself unbounded; the cap is reported, never silent.
class Diagnostics {
 public:
  static constexpr std::size_t kMaxReported = 200;

  void error(Mark mark, std::string message);
  void warning(Mark mark, std::string message);

  bool has_errors() const { return error_count_ > 0; }
  std::size_t error_count() const { return error_count_; }
  std::size_t warning_count() const { return warning_count_; }
  std::size_t dropped() const { return dropped_; }

  // Sorted by position, stable for equal positions.
  std::vector<Diagnostic> sorted() const;

  // Every diagnostic as "FILE:LINE:COL: severity: message\n", plus a line on any that were dropped.
  std::string format(const std::string& file) const;

 private:
  void add(Diagnostic d);

  std::vector<Diagnostic> items_;
  std::size_t error_count_ = 0;
  std::size_t warning_count_ = 0;
  std::size_t dropped_ = 0;
};

std::string format_diagnostic(const std::string& file, const Diagnostic& d);

}  // namespace rollout
