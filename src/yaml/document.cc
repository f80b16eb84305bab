#include "yaml/document.h"

#include <algorithm>
#include <initializer_list>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>
#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/parser.h>

namespace rollout::yaml {

const Node* Node::find(std::string_view key) const {
  for (const auto& [k, v] : entries) {
    if (k.is_scalar() && k.scalar == key) return &v;
  }
  return nullptr;
}

namespace {

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_octal(char c) {
  return c >= '0' && c <= '7';
}
bool is_hex(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// Consumes a run of characters that pass `is` from the front of `s`; returns how many.
std::size_t take(std::string_view& s, bool (*is)(char)) {
  std::size_t n = 0;
  while (n < s.size() && is(s[n])) ++n;
  s.remove_prefix(n);
  return n;
}

bool take_char(std::string_view& s, std::string_view any_of) {
  if (s.empty() || any_of.find(s.front()) == std::string_view::npos) return false;
  s.remove_prefix(1);
  return true;
}

bool is_one_of(std::string_view s, std::initializer_list<std::string_view> words) {
  return std::find(words.begin(), words.end(), s) != words.end();
}

// [-+]?[0-9]+ | 0o[0-7]+ | 0x[0-9a-fA-F]+
bool is_integer(std::string_view s) {
  if (s.starts_with("0o") || s.starts_with("0x")) {
    const bool octal = s[1] == 'o';
    s.remove_prefix(2);
    return take(s, octal ? is_octal : is_hex) > 0 && s.empty();
  }
  take_char(s, "-+");
  return take(s, is_digit) > 0 && s.empty();
}

// [-+]? ( \.[0-9]+ | [0-9]+(\.[0-9]*)? ) ([eE][-+]?[0-9]+)?  |  [-+]?\.(inf|Inf|INF)  |  \.nan ...
bool is_floating(std::string_view s) {
  if (is_one_of(s, {".nan", ".NaN", ".NAN"})) return true;
  take_char(s, "-+");
  if (is_one_of(s, {".inf", ".Inf", ".INF"})) return true;
  if (take(s, is_digit) > 0) {
    if (take_char(s, ".")) take(s, is_digit);
  } else if (!take_char(s, ".") || take(s, is_digit) == 0) {
    return false;
  }
  if (take_char(s, "eE")) {
    take_char(s, "-+");
    if (take(s, is_digit) == 0) return false;
  }
  return s.empty();
}

}  // namespace

// Hand-written rather than std::regex: every string a plan gives is checked here, and a
// 10,000-stage plan has tens of thousands of them.
ScalarType resolve_plain_scalar(std::string_view text) {
  if (is_one_of(text, {"~", "null", "Null", "NULL", ""})) return ScalarType::null;
  if (is_one_of(text, {"true", "True", "TRUE", "false", "False", "FALSE"})) {
    return ScalarType::boolean;
  }
  if (is_integer(text)) return ScalarType::integer;
  if (is_floating(text)) return ScalarType::floating;
  return ScalarType::string;
}

std::string describe(const Node& node) {
  switch (node.kind) {
    case Node::Kind::null:
      return "null";
    case Node::Kind::sequence:
      return "a list";
    case Node::Kind::map:
      return "a map";
    case Node::Kind::scalar:
      break;
  }
  if (node.quoted) return "a string";
  switch (resolve_plain_scalar(node.scalar)) {
    case ScalarType::integer:
    case ScalarType::floating:
      return "a number";
    case ScalarType::boolean:
      return "a boolean";
    case ScalarType::null:
      return "null";
    case ScalarType::string:
      return "a string";
  }
  return "a string";
}

namespace {

Mark to_mark(const YAML::Mark& m) {
  if (m.line < 0) return {};
  return {m.line + 1, m.column + 1};
}

// Thrown from inside the event handler to stop the parser at once.
struct LimitExceeded : std::runtime_error {
  LimitExceeded(Mark m, const std::string& what) : std::runtime_error(what), mark(m) {}
  Mark mark;
};

// Builds the tree from yaml-cpp's events. Aliases are expanded by copying the anchored
// subtree, and every copied node counts toward the node budget: a "billion laughs"
// document hits the budget after a bounded amount of work.
class TreeBuilder : public YAML::EventHandler {
 public:
  explicit TreeBuilder(const Limits& limits) : limits_(limits) {}

  std::optional<Node> take() { return std::move(root_); }

  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}

  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    Node n;
    n.mark = to_mark(mark);
    add(std::move(n), anchor);
  }

  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    auto it = anchors_.find(anchor);
    if (it == anchors_.end()) throw LimitExceeded(to_mark(mark), "alias to an unknown anchor");
    Node copy = it->second;
    count(copy, to_mark(mark));
    copy.mark = to_mark(mark);
    add(std::move(copy), YAML::NullAnchor, /*counted=*/true);
  }

  void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                const std::string& value) override {
    Node n;
    n.kind = Node::Kind::scalar;
    n.mark = to_mark(mark);
    n.scalar = value;
    // yaml-cpp tags plain scalars "?" and quoted or block scalars "!".
    n.quoted = tag != "?";
    add(std::move(n), anchor);
  }

  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    open(Node::Kind::sequence, mark, anchor);
  }
  void OnSequenceEnd() override { close(); }

  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    open(Node::Kind::map, mark, anchor);
  }
  void OnMapEnd() override { close(); }

 private:
  struct Open {
    Node node;
    YAML::anchor_t anchor;
    std::optional<Node> pending_key;  // for maps: a key waiting for its value
  };

  void count(const Node& n, Mark where) {
    nodes_ += 1;
    if (nodes_ > limits_.max_nodes) {
      throw LimitExceeded(where, fmt::format("document has more than {} nodes once aliases are "
                                             "expanded (an alias bomb?)",
                                             limits_.max_nodes));
    }
    for (const Node& item : n.items) count(item, where);
    for (const auto& [k, v] : n.entries) {
      count(k, where);
      count(v, where);
    }
  }

  void open(Node::Kind kind, const YAML::Mark& mark, YAML::anchor_t anchor) {
    if (static_cast<int>(stack_.size()) >= limits_.max_depth) {
      throw LimitExceeded(to_mark(mark),
                          fmt::format("nesting is deeper than {} levels", limits_.max_depth));
    }
    Node n;
    n.kind = kind;
    n.mark = to_mark(mark);
    count(n, n.mark);
    stack_.push_back({std::move(n), anchor, std::nullopt});
  }

  void close() {
    Open top = std::move(stack_.back());
    stack_.pop_back();
    add(std::move(top.node), top.anchor, /*counted=*/true);
  }

  void add(Node n, YAML::anchor_t anchor, bool counted = false) {
    if (!counted) count(n, n.mark);
    if (anchor != YAML::NullAnchor) anchors_[anchor] = n;
    if (stack_.empty()) {
      if (!root_) root_ = std::move(n);
      return;
    }
    Open& parent = stack_.back();
    if (parent.node.kind == Node::Kind::sequence) {
      parent.node.items.push_back(std::move(n));
    } else if (!parent.pending_key) {
      parent.pending_key = std::move(n);
    } else {
      parent.node.entries.push_back(Entry{std::move(*parent.pending_key), std::move(n)});
      parent.pending_key.reset();
    }
  }

  const Limits& limits_;
  std::vector<Open> stack_;
  std::map<YAML::anchor_t, Node> anchors_;
  std::optional<Node> root_;
  std::size_t nodes_ = 0;
};

// The offset of the first byte that breaks UTF-8, or npos.
std::size_t first_invalid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t extra = 0;
    if (c < 0x80) {
      extra = 0;
    } else if ((c >> 5) == 0x6) {
      extra = 1;
    } else if ((c >> 4) == 0xE) {
      extra = 2;
    } else if ((c >> 3) == 0x1E) {
      extra = 3;
    } else {
      return i;
    }
    if (s.size() - i <= extra) return i;
    for (std::size_t k = 1; k <= extra; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 0x2) return i;
    }
    i += extra + 1;
  }
  return std::string_view::npos;
}

// The offset of the first byte that YAML allows nowhere in a file (a C0 control character
// other than tab, line feed and carriage return, or DEL), or npos.
std::size_t first_control_byte(std::string_view s) {
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7F) return i;
  }
  return std::string_view::npos;
}

// Stops the parser at the start of a second document, where it is.
struct SecondDocument {
  Mark mark;
};
class DocumentProbe : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark& mark) override { throw SecondDocument{to_mark(mark)}; }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

Mark mark_of_offset(std::string_view text, std::size_t offset) {
  Mark m{1, 1};
  for (std::size_t i = 0; i < offset; ++i) {
    if (text[i] == '\n') {
      ++m.line;
      m.column = 1;
    } else {
      ++m.column;
    }
  }
  return m;
}

void check_duplicate_keys(const Node& node, Diagnostics& diagnostics) {
  if (node.is_map()) {
    std::map<std::string, Mark> seen;
    for (const auto& [k, v] : node.entries) {
      if (k.is_scalar()) {
        auto [it, inserted] = seen.emplace(k.scalar, k.mark);
        if (!inserted) {
          diagnostics.error(k.mark, fmt::format("duplicate key '{}' (first given at line {})",
                                                k.scalar, it->second.line));
        }
      }
      check_duplicate_keys(v, diagnostics);
    }
  }
  for (const Node& item : node.items) check_duplicate_keys(item, diagnostics);
}

}  // namespace

std::optional<Node> parse(std::string_view text, Diagnostics& diagnostics, const Limits& limits) {
  if (text.size() > limits.max_bytes) {
    diagnostics.error(
        {}, fmt::format("file is {} bytes; the limit is {} bytes", text.size(), limits.max_bytes));
    return std::nullopt;
  }
  if (auto bad = first_invalid_utf8(text); bad != std::string_view::npos) {
    diagnostics.error(mark_of_offset(text, bad), "the file is not valid UTF-8 here");
    return std::nullopt;
  }
  // yaml-cpp reads a raw NUL as the end of its input and other control bytes as something
  // else: the byte that is there is named, where it is.
  if (auto bad = first_control_byte(text); bad != std::string_view::npos) {
    diagnostics.error(mark_of_offset(text, bad),
                      fmt::format("the file holds the control byte \\x{:02x} here, which YAML "
                                  "allows nowhere in a file (in a double-quoted string, write it "
                                  "as an escape)",
                                  static_cast<unsigned char>(text[bad])));
    return std::nullopt;
  }
  // yaml-cpp's own message for a tab in indentation ("illegal block entry") does not say it.
  std::size_t line_start = 0;
  for (int line = 1; line_start < text.size(); ++line) {
    std::size_t i = line_start;
    while (i < text.size() && text[i] == ' ') ++i;
    if (i < text.size() && text[i] == '\t') {
      diagnostics.error({line, static_cast<int>(i - line_start) + 1},
                        "YAML indentation must use spaces; this line is indented with a tab");
      return std::nullopt;
    }
    const std::size_t end = text.find('\n', line_start);
    if (end == std::string_view::npos) break;
    line_start = end + 1;
  }
  std::istringstream in{std::string(text)};
  TreeBuilder builder(limits);
  try {
    YAML::Parser parser(in);
    parser.HandleNextDocument(builder);
    DocumentProbe probe;
    parser.HandleNextDocument(probe);
  } catch (const SecondDocument& e) {
    diagnostics.error(e.mark,
                      "a second YAML document starts here: the file must hold one "
                      "document (remove this '---' and what follows, or merge them)");
    return std::nullopt;
  } catch (const LimitExceeded& e) {
    diagnostics.error(e.mark, e.what());
    return std::nullopt;
  } catch (const YAML::DeepRecursion& e) {
    diagnostics.error(to_mark(e.mark), "nesting is too deep");
    return std::nullopt;
  } catch (const YAML::Exception& e) {
    diagnostics.error(to_mark(e.mark), fmt::format("invalid YAML: {}", e.msg));
    return std::nullopt;
  }
  std::optional<Node> root = builder.take();
  if (!root) {
    diagnostics.error({}, "the file is empty");
    return std::nullopt;
  }
  check_duplicate_keys(*root, diagnostics);
  return root;
}

}  // namespace rollout::yaml
