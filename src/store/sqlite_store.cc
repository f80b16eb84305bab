// The Database under SqliteStore: sqlite3, its prepared statements, WAL, the write lock,
// migrations by PRAGMA user_version, and the file's identity (a file removed or replaced
// under a running run stops it).
#include "store/sqlite_store.h"

#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <optional>

#include <fmt/format.h>

#include "store/database.h"
#include "store/migrations.h"
#include "store/statement.h"

namespace rollout::store {

namespace {

constexpr int kBusyTimeoutMs = 10000;

class SqliteCursor : public Cursor {
 public:
  SqliteCursor(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  ~SqliteCursor() override { sqlite3_finalize(stmt_); }

  void bind_null(int i) override { sqlite3_bind_null(stmt_, i); }
  void bind_integer(int i, std::int64_t v) override { sqlite3_bind_int64(stmt_, i, v); }
  void bind_text(int i, std::string_view v) override {
    sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  }
  bool step() override {
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
  void reset() override {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  std::int64_t integer(int col) const override { return sqlite3_column_int64(stmt_, col); }
  std::string text(int col) const override {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)))
             : std::string();
  }
  bool is_null(int col) const override { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  std::string column_name(int col) const override { return sqlite3_column_name(stmt_, col); }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_;
};

class SqliteDatabase : public Database {
 public:
  SqliteDatabase(const std::string& path, bool create) : path_(path) {
    struct stat file {};
    const bool in_memory = path == ":memory:";
    if (!in_memory && !create && ::stat(path.c_str(), &file) != 0) {
      throw StoreError(
          fmt::format("no state database at '{}' ({}): give the right one with --state PATH or "
                      "ROLLOUT_STATE; only `rollout apply` creates one",
                      path, std::strerror(errno)));
    }
    // A file this user may only read, or one on a read-only mount, is opened read-only: it
    // can be looked at (runs, show, status, report), and whatever would write says why not.
    if (!in_memory && !create && ::access(path.c_str(), W_OK) != 0) {
      read_only_ = std::strerror(errno);
      open_read_only(path);
      return;
    }
    if (sqlite3_open_v2(path.c_str(), &db_,
                        SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0),
                        nullptr) != SQLITE_OK) {
      const std::string why = db_ ? sqlite3_errmsg(db_) : "out of memory";
      sqlite3_close(db_);
      db_ = nullptr;
      throw StoreError(fmt::format("cannot open the state database '{}': {}", path, why));
    }
    sqlite3_busy_timeout(db_, kBusyTimeoutMs);  // another rollout command may be writing
    try {
      // Switching a new database to WAL takes an exclusive lock and does not wait for a
      // busy handler: two commands opening a new file at once would see "database is
      // locked".
      for (int attempt = 0;; ++attempt) {
        char* error = nullptr;
        const int rc = sqlite3_exec(db_, "PRAGMA journal_mode=WAL", nullptr, nullptr, &error);
        sqlite3_free(error);
        if (rc == SQLITE_OK) break;
        if ((rc != SQLITE_BUSY && rc != SQLITE_LOCKED) || attempt == 200) {
          exec("PRAGMA journal_mode=WAL");  // throws with SQLite's reason
          break;
        }
        sqlite3_sleep(50);
      }
      exec("PRAGMA synchronous=FULL");
      exec("PRAGMA foreign_keys=ON");
      migrate();
      if (!in_memory && ::stat(path.c_str(), &file) == 0) {
        device_ = static_cast<std::uint64_t>(file.st_dev);
        inode_ = static_cast<std::uint64_t>(file.st_ino);
      }
    } catch (...) {
      close();
      throw;
    }
  }
  ~SqliteDatabase() override { close(); }

  Cursor& prepared(const std::string& sql) override {
    auto it = cursors_.find(sql);
    if (it != cursors_.end()) return *it->second;
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v3(db_, sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr) !=
        SQLITE_OK) {
      throw StoreError(
          fmt::format("state database: cannot prepare a statement: {}", sqlite3_errmsg(db_)));
    }
    return *cursors_.emplace(sql, std::make_unique<SqliteCursor>(db_, stmt)).first->second;
  }
  void exec(const std::string& sql) override {
    char* error = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
      std::string why = error ? error : sqlite3_errmsg(db_);
      sqlite3_free(error);
      throw StoreError(fmt::format("state database '{}': {}", path_, why));
    }
  }
  void begin() override {
    if (read_only_) {
      throw StoreError(fmt::format(
          "the state database '{}' can only be read here ({}): this command needs to write "
          "it; run it where the file is writable (its owner, or a writable mount)",
          path_, *read_only_));
    }
    run("BEGIN IMMEDIATE");
  }
  void commit() override { run("COMMIT"); }
  void rollback() noexcept override { sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr); }
  std::string_view insertion_order() const override { return "rowid"; }
  std::string name() const override { return fmt::format("state database '{}'", path_); }

  // Throws when the file at path_ is gone or is another file than the one opened.
  void check_alive() override {
    if (inode_ == 0) return;
    struct stat file {};
    if (::stat(path_.c_str(), &file) != 0) {
      throw StoreError(fmt::format(
          "the state database '{}' was removed while this run was using it ({}): stopping, so "
          "that nothing is sent that no record keeps",
          path_, std::strerror(errno)));
    }
    if (static_cast<std::uint64_t>(file.st_dev) != device_ ||
        static_cast<std::uint64_t>(file.st_ino) != inode_) {
      throw StoreError(fmt::format(
          "the state database '{}' was replaced by another file while this run was using it: "
          "stopping, so that nothing is sent that no record keeps",
          path_));
    }
  }

  int schema_version() override {
    Cursor& c = prepared("PRAGMA user_version");
    c.step();
    const int version = static_cast<int>(c.integer(0));
    c.reset();
    return version;
  }

  std::string integrity_check() {
    Cursor& c = prepared("PRAGMA integrity_check");
    std::string out;
    while (c.step()) out += c.text(0);
    c.reset();
    return out;
  }

 private:
  void run(const char* sql) {
    Cursor& c = prepared(sql);
    while (c.step()) {
    }
    c.reset();
  }
  void close() {
    cursors_.clear();
    if (db_) sqlite3_close(db_);
    db_ = nullptr;
  }

  // Read-only: first as SQLite's read-only mode, which still takes the locks that make a
  // concurrent writer safe to read beside; where even that cannot be (a WAL database whose
  // shared-memory file cannot be made, on a read-only mount), as immutable: nothing can
  // change a file on such a mount.
  void open_read_only(const std::string& path) {
    const auto try_open = [&](const char* query) {
      const std::string uri = fmt::format("file:{}?{}", uri_path(path), query);
      if (sqlite3_open_v2(uri.c_str(), &db_, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, nullptr) ==
          SQLITE_OK) {
        sqlite3_busy_timeout(db_, kBusyTimeoutMs);
        if (sqlite3_exec(db_, "SELECT count(*) FROM sqlite_master", nullptr, nullptr, nullptr) ==
            SQLITE_OK)
          return true;
      }
      sqlite3_close(db_);
      db_ = nullptr;
      return false;
    };
    if (!try_open("mode=ro") && !try_open("immutable=1")) {
      throw StoreError(
          fmt::format("cannot open the state database '{}' to read it ({})", path, *read_only_));
    }
    const int latest = SqliteStore::latest_schema_version();
    const int version = schema_version();
    if (version != latest) {
      close();
      throw StoreError(fmt::format(
          "the state database '{}' has schema version {} and this rollout reads version {}; it "
          "can only be read here ({}), so it cannot be migrated: {}",
          path, version, latest, *read_only_,
          version > latest ? "use a newer rollout"
                           : "run a rollout command where the file is writable once, or use "
                             "the rollout that wrote it"));
    }
    struct stat file {};
    if (::stat(path.c_str(), &file) == 0) {
      device_ = static_cast<std::uint64_t>(file.st_dev);
      inode_ = static_cast<std::uint64_t>(file.st_ino);
    }
  }

  // A path as a file: URI's path: '%', '?' and '#' escaped.
  static std::string uri_path(const std::string& path) {
    std::string out;
    for (const char c : path) {
      if (c == '%' || c == '?' || c == '#')
        out += fmt::format("%{:02X}", static_cast<unsigned char>(c));
      else
        out += c;
    }
    return out;
  }

  void migrate() {
    const int latest = SqliteStore::latest_schema_version();
    const auto refuse_newer = [&](int current) {
      if (current > latest) {
        throw StoreError(
            fmt::format("the state database '{}' has schema version {}, newer than this "
                        "rollout knows ({}): use a newer rollout; nothing was changed",
                        path_, current, latest));
      }
    };
    refuse_newer(schema_version());
    if (schema_version() == latest) return;
    // The version is read again under the write lock: another process opening the same new
    // database may have migrated it meanwhile.
    begin();
    try {
      const int current = schema_version();
      refuse_newer(current);
      for (int v = current; v < latest; ++v) {
        exec(std::string(sqlite_migrations()[static_cast<std::size_t>(v)].sql));
        exec(fmt::format("PRAGMA user_version = {}", v + 1));
      }
      commit();
    } catch (...) {
      rollback();
      throw;
    }
  }

  std::string path_;
  std::optional<std::string> read_only_;  // why the file can only be read, when it can
  sqlite3* db_ = nullptr;
  std::uint64_t device_ = 0, inode_ = 0;  // the file opened; 0 in memory
  std::map<std::string, std::unique_ptr<SqliteCursor>> cursors_;
};

}  // namespace

SqliteStore::SqliteStore(const std::string& path, bool create)
    : SqlStore(std::make_unique<SqliteDatabase>(path, create)) {}

int SqliteStore::latest_schema_version() {
  return static_cast<int>(sqlite_migrations().size());
}

std::string SqliteStore::integrity_check() {
  return static_cast<SqliteDatabase&>(database()).integrity_check();
}

}  // namespace rollout::store
