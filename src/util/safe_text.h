// Text that came from outside (a server's answer, a file) made safe to keep and to show:
// valid UTF-8 only (each invalid byte becomes U+FFFD), control characters written out as
// escapes (ESC as \x1b, a newline as \n), and secrets cut out. Every reader of the state
// database, every terminal and every log line can then take it as it is.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace rollout {

bool is_valid_utf8(std::string_view text);

// Invalid UTF-8 replaced by U+FFFD; everything else as it was.
std::string valid_utf8(std::string_view text);

// valid_utf8, and C0 controls and DEL escaped (\n, \r, \t, \xNN): one line, no terminal
// sequences.
std::string printable(std::string_view text);

// Every occurrence of `secret` (and of its JSON-escaped form) replaced by "<redacted>".
// Nothing happens for an empty secret.
std::string redact(std::string text, std::string_view secret);

// Where a URL's user information ("user:password") is: the offsets from just after "://" to
// the '@' before the host, or nullopt when it has none.
std::optional<std::pair<std::size_t, std::size_t>> url_user_info(std::string_view url);

// The URL with its user information, if any, shown as "***": what a message may print.
std::string without_credentials(std::string url);

}  // namespace rollout
