#include <doctest/doctest.h>

#include <array>

#include "util/diagnostic.h"
#include "util/duration.h"
#include "util/sha256.h"
#include "util/suggest.h"

using namespace rollout;
using namespace std::chrono_literals;

TEST_CASE("durations parse as operators write them") {
  CHECK(parse_duration("90s") == 90s);
  CHECK(parse_duration("10m") == 600s);
  CHECK(parse_duration("2h") == 7200s);
  CHECK(parse_duration("1h30m") == 5400s);
  CHECK(parse_duration("1d") == 86400s);
  CHECK(parse_duration("0") == 0s);
  CHECK(parse_duration("0s") == 0s);
}

TEST_CASE("bad durations say why") {
  std::string why;
  CHECK_FALSE(parse_duration("10", &why));
  CHECK(why == "missing unit after 10 (did you mean '10s' or '10m'?)");
  CHECK_FALSE(parse_duration("10x", &why));
  CHECK(why == "unknown unit 'x': use s, m, h or d (e.g. 90s, 10m, 2h)");
  CHECK_FALSE(parse_duration("30m1h", &why));
  CHECK(why == "units must go from largest to smallest, each once (e.g. 1h30m)");
  CHECK_FALSE(parse_duration("", &why));
  CHECK_FALSE(parse_duration("-5m", &why));
  CHECK_FALSE(parse_duration("99999999999999999999s", &why));
  CHECK(why == "duration is too long (at most 3650d)");
}

TEST_CASE("durations format back to their shortest spelling") {
  CHECK(format_duration(0s) == "0s");
  CHECK(format_duration(90s) == "1m30s");
  CHECK(format_duration(7200s) == "2h");
  CHECK(format_duration(90000s) == "1d1h");
}

TEST_CASE("did you mean") {
  constexpr std::array<std::string_view, 3> words = {"tag", "app", "specific_device"};
  CHECK(edit_distance("kitten", "sitting") == 3);
  CHECK(did_you_mean("tags", words) == " (did you mean 'tag'?)");
  CHECK(did_you_mean("specific-device", words) == " (did you mean 'specific_device'?)");
  CHECK(did_you_mean("zzzzzz", words) == "");
}

TEST_CASE("diagnostics sort by position and cap their count") {
  Diagnostics d;
  d.error({3, 1}, "third");
  d.warning({1, 5}, "first");
  CHECK(d.format("f.yaml") == "f.yaml:1:5: warning: first\nf.yaml:3:1: error: third\n");
  for (int i = 0; i < 500; ++i) d.error({i + 10, 1}, "x");
  CHECK(d.error_count() == 501);
  CHECK(d.sorted().size() == Diagnostics::kMaxReported);
  CHECK(d.format("f.yaml").find("302 more diagnostics not shown") != std::string::npos);
}

TEST_CASE("sha256: FIPS 180-2's examples") {
  CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  CHECK(sha256_hex(std::string(1000000, 'a')) ==
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}
