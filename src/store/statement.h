// Private to store/: the prepared statement and the transaction that the SQLite store's
// files share. sqlite3 lives here and nowhere else.
#pragma once

#include <sqlite3.h>

#include <optional>
#include <string>
#include <type_traits>

#include <fmt/format.h>

#include "state/status.h"
#include "store/sqlite_store.h"
#include "util/safe_text.h"

namespace rollout::store {

inline constexpr int kBusyTimeoutMs = 10000;

inline std::int64_t to_ms(WallTime t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}
inline WallTime from_ms(std::int64_t ms) {
  return WallTime(std::chrono::milliseconds(ms));
}

// A prepared statement, kept by the store and reused: bind by position (1-based), step,
// read columns (0-based). It is reset when the handle goes.
class SqliteStore::Statement {
 public:
  Statement(SqliteStore& store, const std::string& sql)
      : db_(store.db_), stmt_(store.prepared(sql)) {}
  ~Statement() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& bind(int i, std::int64_t v) {
    sqlite3_bind_int64(stmt_, i, v);
    return *this;
  }
  // The state holds valid UTF-8 only, whatever a server sent: every reader keeps working.
  Statement& bind(int i, const std::string& v) {
    if (!is_valid_utf8(v)) {
      const std::string repaired = valid_utf8(v);
      sqlite3_bind_text(stmt_, i, repaired.data(), static_cast<int>(repaired.size()),
                        SQLITE_TRANSIENT);
      return *this;
    }
    sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Statement& bind(int i, WallTime t) { return bind(i, to_ms(t)); }
  Statement& bind(int i, const std::optional<WallTime>& t) {
    if (t) return bind(i, *t);
    sqlite3_bind_null(stmt_, i);
    return *this;
  }
  Statement& bind(int i, const std::optional<std::string>& v) {
    if (v) return bind(i, *v);
    sqlite3_bind_null(stmt_, i);
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
    sqlite3_bind_null(stmt_, i);
    return *this;
  }

  // True while there is a row.
  bool step() {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) {
      throw StoreError(fmt::format(
          "state database '{}': another process has held its write lock for over {} s (one "
          "frozen or stuck in the middle of a write?); nothing was changed: try again",
          sqlite3_db_filename(db_, "main"), kBusyTimeoutMs / 1000));
    }
    throw StoreError(fmt::format("state database '{}': {}", sqlite3_db_filename(db_, "main"),
                                 sqlite3_errmsg(db_)));
  }
  void run() {
    while (step()) {
    }
  }
  void reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

  static sqlite3_stmt* prepare(sqlite3* db, const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v3(db, sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr) !=
        SQLITE_OK) {
      throw StoreError(
          fmt::format("state database: cannot prepare a statement: {}", sqlite3_errmsg(db)));
    }
    return stmt;
  }

  std::int64_t integer(int col) const { return sqlite3_column_int64(stmt_, col); }
  std::string text(int col) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)))
             : std::string();
  }
  bool is_null(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
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
    throw StoreError(fmt::format(
        "state database '{}': column {} holds '{}', which this rollout does not know (written "
        "by a newer version?); nothing was changed",
        sqlite3_db_filename(db_, "main"), sqlite3_column_name(stmt_, col), w));
  }
  template <typename E>
  std::optional<E> optional_word(int col) const {
    if (is_null(col) || text(col).empty()) return std::nullopt;
    return word<E>(col);
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_;
};

// BEGIN IMMEDIATE ... COMMIT; rolls back unless committed.
class SqliteStore::Transaction {
 public:
  explicit Transaction(SqliteStore& s) : store_(s) { Statement(store_, "BEGIN IMMEDIATE").run(); }
  ~Transaction() {
    if (!committed_) sqlite3_exec(store_.db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  void commit() {
    Statement(store_, "COMMIT").run();
    committed_ = true;
  }

 private:
  SqliteStore& store_;
  bool committed_ = false;
};

}  // namespace rollout::store
