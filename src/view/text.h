// Text helpers for terminal output: joining, and cutting a line to a terminal's width
// without breaking a UTF-8 character or an ANSI colour sequence.
#pragma once

#include <string>
#include <vector>

namespace rollout::view {

std::string join(const std::vector<std::string>& parts, const std::string& separator);

// Columns the text takes on a terminal: UTF-8 characters count one, ANSI escapes none.
int visible_width(const std::string& text);

// The text cut to `width` columns ("..." marks a cut); colour is reset after a cut.
std::string fit(const std::string& text, int width);

// Moves the cursor up over the last `lines` lines drawn and clears from there down, so
// that a block can be drawn again in place; empty for 0 lines.
std::string erase_lines_above(int lines);

}  // namespace rollout::view
