#include "view/text.h"

namespace rollout::view {

namespace {

bool continuation(unsigned char c) {
  return (c & 0xC0) == 0x80;
}

// The end of the ANSI CSI sequence starting at `i` (ESC [ ... final byte).
std::size_t escape_end(const std::string& s, std::size_t i) {
  std::size_t j = i + 2;
  while (j < s.size() && !(s[j] >= 0x40 && s[j] <= 0x7e)) ++j;
  return std::min(j + 1, s.size());
}

}  // namespace

std::string join(const std::vector<std::string>& parts, const std::string& separator) {
  std::string out;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (i) out += separator;
    out += parts[i];
  }
  return out;
}

int visible_width(const std::string& text) {
  int width = 0;
  for (std::size_t i = 0; i < text.size();) {
    if (text[i] == '\x1b' && i + 1 < text.size() && text[i + 1] == '[') {
      i = escape_end(text, i);
      continue;
    }
    if (!continuation(static_cast<unsigned char>(text[i]))) ++width;
    ++i;
  }
  return width;
}

std::string fit(const std::string& text, int width) {
  if (width < 4 || visible_width(text) <= width) return text;
  std::string out;
  bool coloured = false;
  int used = 0;
  for (std::size_t i = 0; i < text.size();) {
    if (text[i] == '\x1b' && i + 1 < text.size() && text[i + 1] == '[') {
      const std::size_t end = escape_end(text, i);
      out.append(text, i, end - i);
      coloured = true;
      i = end;
      continue;
    }
    if (!continuation(static_cast<unsigned char>(text[i]))) {
      if (used == width - 3) break;
      ++used;
    }
    out += text[i];
    ++i;
  }
  if (coloured) out += "\x1b[0m";
  return out + "...";
}

std::string erase_lines_above(int lines) {
  if (lines <= 0) return {};
  return "\x1b[" + std::to_string(lines) + "A\r\x1b[J";
}

}  // namespace rollout::view
