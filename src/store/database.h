// Private to store/: the one thing SqlStore needs from a database engine. SQLite and
// PostgreSQL each implement it in their own file (sqlite3 in sqlite_store.cc, libpq in
// postgres_store.cc); the records, the leases and the fencing are written once, over it, in
// SQL both engines run as it is.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace rollout::store {

// A prepared statement: bind by position (1-based), step through the rows, read columns
// (0-based). step() throws StoreError saying what went wrong, for a person.
class Cursor {
 public:
  virtual ~Cursor() = default;
  virtual void bind_null(int i) = 0;
  virtual void bind_integer(int i, std::int64_t v) = 0;
  virtual void bind_text(int i, std::string_view v) = 0;
  // True while there is a row.
  virtual bool step() = 0;
  // Ready to bind and run again; the bindings cleared.
  virtual void reset() = 0;
  virtual std::int64_t integer(int col) const = 0;
  virtual std::string text(int col) const = 0;
  virtual bool is_null(int col) const = 0;
  virtual std::string column_name(int col) const = 0;
};

class Database {
 public:
  virtual ~Database() = default;
  // Prepared once per text and reused: one use of a text at a time.
  virtual Cursor& prepared(const std::string& sql) = 0;
  // Statements without parameters or rows (a migration: several at once).
  virtual void exec(const std::string& sql) = 0;
  // A write transaction. SQLite takes its write lock at once; PostgreSQL locks rows as the
  // statements reach them.
  virtual void begin() = 0;
  virtual void commit() = 0;
  virtual void rollback() noexcept = 0;
  // After a transaction failed: true when its connection was lost before its COMMIT was
  // sent (so the server dropped all of it) and the connection was made again, so that the
  // whole transaction may be written again. False otherwise (SQLite: never).
  virtual bool retry_transaction() { return false; }
  // Inside a transaction that claims a run (a new run with its lease, a lease taken): waits
  // for every other claim to commit first, so that of two racing claims one sees the other.
  // SQLite's write lock does that already.
  virtual void serialize_claims() {}
  // Appended to the read of a lease row that a write is fenced by: the row stays as read
  // until the write commits (a takeover waits for it). SQLite's write lock does that already.
  virtual std::string_view lock_row() const { return ""; }
  // The column that orders a table's rows as they were inserted, where the table has no id.
  virtual std::string_view insertion_order() const = 0;
  // Tells processes waiting on news of `run_id` (an approval, an abort request) when the
  // transaction commits. Polling finds it otherwise.
  virtual void notify(const std::string& /*run_id*/) {}
  virtual int news_fd() { return -1; }
  virtual std::vector<std::string> take_news() { return {}; }
  // Throws StoreError when the database this store opened is no longer there to write to.
  virtual void check_alive() {}
  // How messages name the database: "state database 'rollout.db'", or its URL without any
  // password.
  virtual std::string name() const = 0;
  virtual int schema_version() = 0;
};

}  // namespace rollout::store
