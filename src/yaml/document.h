// A YAML document as a plain tree with source positions. yaml-cpp lives only behind
// this header: the plan and fleet loaders read this tree, never yaml-cpp's types.
//
// The reader is built for hostile input: the text size, the nesting depth and the
// number of nodes after alias expansion are bounded, and crossing a bound is an
// error diagnostic, never a crash or a hang.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/diagnostic.h"

namespace rollout::yaml {

struct Limits {
  std::size_t max_bytes = 4 * 1024 * 1024;
  int max_depth = 64;
  std::size_t max_nodes = 200'000;  // counted after aliases are expanded
};

struct Entry;

struct Node {
  enum class Kind { null, scalar, sequence, map };

  Kind kind = Kind::null;
  Mark mark;
  std::string scalar;          // for scalars
  bool quoted = false;         // a quoted or block scalar: always a string, never a number or bool
  std::vector<Node> items;     // for sequences
  std::vector<Entry> entries;  // for maps, in document order

  bool is_null() const { return kind == Kind::null; }
  bool is_scalar() const { return kind == Kind::scalar; }
  bool is_sequence() const { return kind == Kind::sequence; }
  bool is_map() const { return kind == Kind::map; }

  // For maps: the value under `key`, or nullptr.
  const Node* find(std::string_view key) const;
};

struct Entry {
  Node key;
  Node value;
};

// What a plain (unquoted) scalar means under YAML 1.2's core schema.
enum class ScalarType { string, integer, floating, boolean, null };
ScalarType resolve_plain_scalar(std::string_view text);
// "a string", "a number", "a boolean", "null", "a list", "a map": for messages.
std::string describe(const Node& node);

// Parses the first document of `text`. Problems go into `diagnostics`; the result is
// nullopt when the document could not be read at all.
std::optional<Node> parse(std::string_view text, Diagnostics& diagnostics,
                          const Limits& limits = {});

}  // namespace rollout::yaml
