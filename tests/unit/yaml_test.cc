#include <doctest/doctest.h>

#include <regex>
#include <string>
#include <vector>

#include "yaml/document.h"

using namespace rollout;

TEST_CASE("scalars keep their position and whether they were quoted") {
  Diagnostics d;
  auto root = yaml::parse("a: 1\nb: \"1\"\nc:\n  - x\n", d);
  REQUIRE(root);
  CHECK_FALSE(d.has_errors());
  const yaml::Node* a = root->find("a");
  REQUIRE(a);
  CHECK(a->mark == Mark{1, 4});
  CHECK_FALSE(a->quoted);
  CHECK(yaml::describe(*a) == "a number");
  CHECK(root->find("b")->quoted);
  CHECK(yaml::describe(*root->find("b")) == "a string");
  CHECK(root->find("c")->items.at(0).mark == Mark{4, 5});
}

TEST_CASE("plain scalars resolve by YAML 1.2's core schema") {
  CHECK(yaml::resolve_plain_scalar("12") == yaml::ScalarType::integer);
  CHECK(yaml::resolve_plain_scalar("2.4") == yaml::ScalarType::floating);
  CHECK(yaml::resolve_plain_scalar("true") == yaml::ScalarType::boolean);
  CHECK(yaml::resolve_plain_scalar("~") == yaml::ScalarType::null);
  CHECK(yaml::resolve_plain_scalar("v2.4") == yaml::ScalarType::string);
  CHECK(yaml::resolve_plain_scalar("d-4ec7-1be9") == yaml::ScalarType::string);
  CHECK(yaml::resolve_plain_scalar("yes") == yaml::ScalarType::string);
}

// The resolver is hand-written for speed; YAML 1.2's core schema gives it as regular
// expressions. Both must agree on every string built from the characters that matter.
TEST_CASE("the plain scalar resolver agrees with the core schema's regular expressions") {
  const std::regex null_re("~|null|Null|NULL|");
  const std::regex bool_re("true|True|TRUE|false|False|FALSE");
  const std::regex int_re("[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+");
  const std::regex float_re(
      "[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?|[-+]?\\.(inf|Inf|INF)|\\.nan|"
      "\\.NaN|\\.NAN");
  auto expected = [&](const std::string& s) {
    if (std::regex_match(s, null_re)) return yaml::ScalarType::null;
    if (std::regex_match(s, bool_re)) return yaml::ScalarType::boolean;
    if (std::regex_match(s, int_re)) return yaml::ScalarType::integer;
    if (std::regex_match(s, float_re)) return yaml::ScalarType::floating;
    return yaml::ScalarType::string;
  };
  for (const char* word :
       {".inf",  "-.Inf", "+.INF", ".nan",  "-.nan",  ".NaN",  "0o17",  "0o18",  "0x1F",
        "0xg",   "0x",    "0o",    "-0x1",  "1e5",    "1.e5",  ".e5",   "1e",    "+",
        "-",     ".",     "~",     "Null",  "nULL",   "TRUE",  "tRUE",  "1_000", "0.5.1",
        "-1e5",  "+1.5",  "1.5e",  "1.5e+", "-.5e-3", "0x1f0", "0o777", ".5.",   "+-1",
        "1e+5x", "-0.0",  "00",    "1.",    "-1.e+9"}) {
    CAPTURE(word);
    CHECK(yaml::resolve_plain_scalar(word) == expected(word));
  }
  // Every string of up to three characters over an alphabet that reaches every branch.
  const std::string alphabet = "0189.eE+-xoaf";
  std::vector<std::string> strings{""};
  for (std::size_t i = 0; i < strings.size(); ++i) {
    if (strings[i].size() == 3) continue;
    for (char c : alphabet) strings.push_back(strings[i] + c);
  }
  int disagreements = 0;
  for (const std::string& s : strings) {
    if (yaml::resolve_plain_scalar(s) != expected(s)) {
      if (++disagreements <= 5) FAIL_CHECK("disagrees on '" << s << "'");
    }
  }
  CHECK(disagreements == 0);
  CHECK(strings.size() > 2000);
}

TEST_CASE("aliases expand, and an alias bomb stops at the node budget") {
  Diagnostics ok;
  auto root = yaml::parse("base: &g {bake: 1m}\nother: *g\n", ok);
  REQUIRE(root);
  CHECK(root->find("other")->find("bake")->scalar == "1m");

  std::string bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  for (char c = 'b'; c <= 'j'; ++c) {
    bomb += std::string(1, c) + ": &" + c + " [";
    for (int i = 0; i < 10; ++i) bomb += std::string(i ? ", *" : "*") + char(c - 1);
    bomb += "]\n";
  }
  Diagnostics d;
  CHECK_FALSE(yaml::parse(bomb, d));
  CHECK(d.format("f").find("nodes once aliases are expanded (an alias bomb?)") !=
        std::string::npos);
}

TEST_CASE("deep nesting is an error, not a stack overflow") {
  Diagnostics d;
  std::string deep(100000, '[');
  CHECK_FALSE(yaml::parse(deep, d));
  CHECK(d.has_errors());
  Diagnostics d2;
  std::string nested_maps;
  for (int i = 0; i < 100; ++i)
    nested_maps += std::string(static_cast<std::size_t>(i) * 2, ' ') + "k:\n";
  CHECK_FALSE(yaml::parse(nested_maps, d2));
  CHECK(d2.format("f").find("nesting is deeper than 64 levels") != std::string::npos);
}

TEST_CASE("huge files are refused before parsing") {
  Diagnostics d;
  std::string huge(5 * 1024 * 1024, '#');
  CHECK_FALSE(yaml::parse(huge, d));
  CHECK(d.format("f") == "f: error: file is 5242880 bytes; the limit is 4194304 bytes\n");
}

TEST_CASE("invalid UTF-8 is refused with its position") {
  Diagnostics d;
  CHECK_FALSE(yaml::parse("a: b\nc: \xff\n", d));
  CHECK(d.format("f") == "f:2:4: error: the file is not valid UTF-8 here\n");
}

TEST_CASE("duplicate keys are errors") {
  Diagnostics d;
  REQUIRE(yaml::parse("name: a\nname: b\n", d));
  CHECK(d.format("f") == "f:2:1: error: duplicate key 'name' (first given at line 1)\n");
}

TEST_CASE("syntax errors carry a position") {
  Diagnostics d;
  CHECK_FALSE(yaml::parse("a: [1, 2\n", d));
  CHECK(d.format("f").rfind("f:", 0) == 0);
  CHECK(d.format("f").find("error: invalid YAML") != std::string::npos);
}
