// Private to store/: the prepared statement and the transaction that SqlStore's files
// share, over either database (store/database.h).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <type_traits>

#include <fmt/format.h>

#include "state/status.h"
#include "store/database.h"
#include "store/sql_store.h"
#include "util/safe_text.h"

namespace rollout::store {

inline std::int64_t to_ms(WallTime t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}
inline WallTime from_ms(std::int64_t ms) {
  return WallTime(std::chrono::milliseconds(ms));
}

// A prepared statement, kept by the database and reused: typed binds by position (1-based),
// step, typed reads of columns (0-based). It is reset when the handle goes.
class SqlStore::Statement {
 public:
  Statement(SqlStore& store, const std::string& sql)
      : db_(*store.db_), cursor_(store.db_->prepared(sql)) {}
  ~Statement() { cursor_.reset(); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& bind(int i, std::int64_t v) {
    cursor_.bind_integer(i, v);
    return *this;
  }
  // The state holds valid UTF-8 only, whatever a server sent: every reader keeps working.
  Statement& bind(int i, const std::string& v) {
    if (!is_valid_utf8(v)) {
      cursor_.bind_text(i, valid_utf8(v));
      return *this;
    }
    cursor_.bind_text(i, v);
    return *this;
  }
  Statement& bind(int i, WallTime t) { return bind(i, to_ms(t)); }
  Statement& bind(int i, const std::optional<WallTime>& t) {
    if (t) return bind(i, *t);
    cursor_.bind_null(i);
    return *this;
  }
  Statement& bind(int i, const std::optional<std::string>& v) {
    if (v) return bind(i, *v);
    cursor_.bind_null(i);
    return *this;
  }
  // A status is stored as its word (state/status.h).
  template <typename E>
  requires std::is_enum_v<E> Statement& bind(int i, E v) {
    return bind(i, std::string(state::name(v)));
  }
  template <typename E>
  requires std::is_enum_v<E> Statement& bind(int i, const std::optional<E>& v) {
    if (v) return bind(i, *v);
    cursor_.bind_null(i);
    return *this;
  }

  // True while there is a row.
  bool step() { return cursor_.step(); }
  void run() {
    while (step()) {
    }
  }
  void reset() { cursor_.reset(); }

  std::int64_t integer(int col) const { return cursor_.integer(col); }
  std::string text(int col) const { return cursor_.text(col); }
  bool is_null(int col) const { return cursor_.is_null(col); }
  WallTime time(int col) const { return from_ms(integer(col)); }
  std::optional<WallTime> optional_time(int col) const {
    if (is_null(col)) return std::nullopt;
    return time(col);
  }
  std::optional<std::string> optional_text(int col) const {
    if (is_null(col)) return std::nullopt;
    return text(col);
  }
  // A status word read back; one this version does not know stops the command with a
  // message rather than being taken for another.
  template <typename E>
  E word(int col) const {
    const std::string w = text(col);
    if (auto value = state::parse<E>(w)) return *value;
    throw StoreError(
        fmt::format("{}: column {} holds '{}', which this rollout does not know (written by a "
                    "newer version?); nothing was changed",
                    db_.name(), cursor_.column_name(col), w));
  }
  template <typename E>
  std::optional<E> optional_word(int col) const {
    if (is_null(col) || text(col).empty()) return std::nullopt;
    return word<E>(col);
  }

 private:
  Database& db_;
  Cursor& cursor_;
};

// One write transaction; rolls back unless committed.
class SqlStore::Transaction {
 public:
  explicit Transaction(SqlStore& s) : db_(*s.db_) { db_.begin(); }
  ~Transaction() {
    if (!committed_) db_.rollback();
  }
  void commit() {
    db_.commit();
    committed_ = true;
  }

 private:
  Database& db_;
  bool committed_ = false;
};

}  // namespace rollout::store
