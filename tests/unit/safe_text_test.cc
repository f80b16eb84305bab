#include <doctest/doctest.h>

#include "util/safe_text.h"

using namespace rollout;

TEST_CASE("invalid UTF-8 becomes U+FFFD, valid text stays as it is") {
  CHECK(is_valid_utf8("plain, Zürich, 東京, 🙂"));
  CHECK(valid_utf8("plain, Zürich, 東京, 🙂") == "plain, Zürich, 東京, 🙂");
  CHECK_FALSE(is_valid_utf8("bad \xff\xfe"));
  CHECK(valid_utf8("bad \xff\xfe!") == "bad \xEF\xBF\xBD\xEF\xBF\xBD!");
  CHECK(valid_utf8("\xC0\xAF") == "\xEF\xBF\xBD\xEF\xBF\xBD");                  // overlong '/'
  CHECK(valid_utf8("\xED\xA0\x80") == "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // a surrogate
  CHECK(valid_utf8("cut \xE6\x9D") == "cut \xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST_CASE("control characters are written out: no terminal sequence, no forged line") {
  CHECK(printable("\x1b[2Jclear") == "\\x1b[2Jclear");
  CHECK(printable("one\n2026-01-01 forged") == "one\\n2026-01-01 forged");
  CHECK(printable("tab\tcr\r del\x7f") == "tab\\tcr\\r del\\x7f");
  CHECK(printable("ok \xff") == "ok \xEF\xBF\xBD");
}

TEST_CASE("a secret is cut out as it is and as JSON carries it") {
  CHECK(redact(R"({"user_token":"s3cr3t","x":"s3cr3t"})", "s3cr3t") ==
        R"({"user_token":"<redacted>","x":"<redacted>"})");
  CHECK(redact(R"(echo: {"user_token":"a\"b\\c"})", "a\"b\\c") ==
        R"(echo: {"user_token":"<redacted>"})");
  CHECK(redact(R"({"user_token":"line\nbreak"})", "line\nbreak") ==
        R"({"user_token":"<redacted>"})");
  CHECK(redact("nothing here", "") == "nothing here");
}

TEST_CASE("a URL's user information is found before its host, and shown as ***") {
  CHECK(without_credentials("https://u:p@host/v1/") == "https://***@host/v1/");
  CHECK(without_credentials("https://host/v1/?to=a@b") == "https://host/v1/?to=a@b");
  CHECK(without_credentials("https://host/a@b/") == "https://host/a@b/");
  CHECK(without_credentials("postgresql://rollout@127.0.0.1:5/db") ==
        "postgresql://***@127.0.0.1:5/db");
  CHECK_FALSE(url_user_info("https://host/"));
  CHECK_FALSE(url_user_info("no url"));
}
