// The Database under PostgresStore: libpq, its prepared statements (SQL written with `?`,
// numbered here), transactions, a lock that orders claims across machines, row locks for
// fencing, LISTEN/NOTIFY for news, and migrations recorded in rollout_schema.
#include "store/postgres_store.h"

#include <libpq-fe.h>
#include <poll.h>

#include <charconv>
#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "store/database.h"
#include "store/migrations.h"
#include "store/statement.h"
#include "util/safe_text.h"

namespace rollout::store {

namespace {

// pg_advisory_xact_lock's key for claims of runs ("rollout" in ASCII).
constexpr std::int64_t kClaimsLock = 0x726f6c6c6f7574;
constexpr std::int64_t kMigrationLock = kClaimsLock + 1;
constexpr const char* kNewsChannel = "rollout_news";

class PgCursor;

class PgDatabase : public Database {
 public:
  PgDatabase(const std::string& url, Millis answer_timeout, Millis reconnect_for)
      : name_("state database " + redact_postgres_url(url)),
        answer_timeout_(answer_timeout),
        reconnect_for_(reconnect_for) {
    if (auto why = postgres_url_refusal(url)) throw StoreError(*why);
    // The URL's own settings win over these defaults; the encoding is ours to choose.
    const char* keys[] = {"connect_timeout", "application_name", "dbname", "client_encoding",
                          nullptr};
    const char* values[] = {"10", "rollout", url.c_str(), "UTF8", nullptr};
    conn_ = PQconnectdbParams(keys, values, 1);
    if (!conn_ || PQstatus(conn_) != CONNECTION_OK) {
      const std::string why = conn_ ? trimmed(PQerrorMessage(conn_)) : "out of memory";
      PQfinish(conn_);
      conn_ = nullptr;
      throw StoreError(fmt::format(
          "cannot open the {}: {} (the database must exist: rollout creates its tables, not "
          "the database; the password comes from PGPASSWORD, ~/.pgpass or a service file)",
          name_, why));
    }
    PQsetNoticeProcessor(
        conn_, [](void*, const char*) {}, nullptr);  // NOTICEs are not for the operator
    try {
      configure();
      migrate();
    } catch (...) {
      PQfinish(conn_);
      conn_ = nullptr;
      throw;
    }
  }
  ~PgDatabase() override;

  Cursor& prepared(const std::string& sql) override;

  void exec(const std::string& sql) override { check(query(sql), sql); }
  // A connection found lost as a transaction begins is made again first: nothing of the
  // transaction was sent yet.
  void begin() override {
    try {
      exec("BEGIN");
    } catch (const StoreError&) {
      if (!reconnect()) throw;
      exec("BEGIN");
    }
    in_transaction_ = true;
    commit_sent_ = false;
    lost_before_commit_ = false;
  }
  bool in_transaction() const { return in_transaction_; }

  // When the connection is lost (or was given up for not answering) and no transaction is
  // open: made again, with backoff, for up to reconnect_for_; true once it is, false when it
  // was not lost. Throws when it cannot be, saying why: a database that no longer exists
  // takes its records with it, and no resume can go on from them.
  bool reconnect();
  // Once a connection was lost: whether its database is gone, asked of the server by a new
  // connection with the same parameters; the server's words when it says so.
  std::optional<std::string> database_gone();
  StoreError no_longer_exists(const std::string& why) const {
    return StoreError(fmt::format(
        "the {} no longer exists ({}): the run's records went with it, so no resume can go on "
        "from them; restore the database from a backup, or start the rollout anew with rollout "
        "apply",
        name_, why));
  }
  bool lost() const { return broken_ || PQstatus(conn_) != CONNECTION_OK; }
  bool retry_transaction() override {
    if (!lost_before_commit_) return false;
    lost_before_commit_ = false;
    in_transaction_ = false;  // the server ended it with the session
    return reconnect();
  }

  void commit() override {
    in_transaction_ = false;
    commit_sent_ = true;  // lost from here on: it may have committed
    PGresult* r = query("COMMIT");
    // A transaction that had failed ends in a ROLLBACK, not an error.
    const bool rolled_back = r && std::string_view(PQcmdStatus(r)) == "ROLLBACK";
    check(r, "COMMIT");
    if (rolled_back) throw StoreError(fmt::format("{}: the transaction was rolled back", name_));
  }
  void rollback() noexcept override {
    in_transaction_ = false;
    if (broken_ || PQtransactionStatus(conn_) == PQTRANS_IDLE) return;
    try {
      PQclear(query("ROLLBACK"));
    } catch (const StoreError&) {
      // The server did not answer: it ends the transaction with the session.
    }
  }
  void serialize_claims() override {
    exec(fmt::format("SELECT pg_advisory_xact_lock({})", kClaimsLock));
  }
  std::string_view lock_row() const override { return " FOR UPDATE"; }
  std::string_view insertion_order() const override { return "id"; }
  void notify(const std::string& run_id) override {
    Cursor& c = prepared(fmt::format("SELECT pg_notify('{}', ?)", kNewsChannel));
    c.bind_text(1, run_id);
    while (c.step()) {
    }
    c.reset();
  }
  int news_fd() override {
    if (broken_ || PQstatus(conn_) != CONNECTION_OK) return -1;  // no news on a lost connection
    if (!listening_) {
      exec(fmt::format("LISTEN {}", kNewsChannel));
      listening_ = true;
    }
    return PQsocket(conn_);
  }
  std::vector<std::string> take_news() override {
    std::vector<std::string> out;
    PQconsumeInput(conn_);
    while (PGnotify* n = PQnotifies(conn_)) {
      out.emplace_back(n->extra);
      PQfreemem(n);
    }
    return out;
  }
  // A connection found lost here (before a heartbeat, a write, a send's lease check) is made
  // again first, for up to reconnect_for_.
  void check_alive() override {
    if (!lost() || reconnect()) return;
    throw StoreError(fmt::format(
        "the connection to the {} was lost: stopping, so that nothing is sent that no record "
        "keeps; `rollout resume` goes on once the server is back",
        name_));
  }
  std::string name() const override { return name_; }

  int schema_version() override {
    // The table is read only where it exists: a statement naming a missing table fails whole.
    if (!integer("SELECT CASE WHEN to_regclass('rollout_schema') IS NULL THEN 0 ELSE 1 END"))
      return 0;
    return static_cast<int>(integer("SELECT COALESCE(MAX(version), 0) FROM rollout_schema"));
  }

  // Clears `r` (unless not `clear`) when it succeeded; throws StoreError, for a person, when it
  // failed.
  void check(PGresult* r, std::string_view what, bool clear = true) {
    const ExecStatusType status = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) {
      if (clear) PQclear(r);
      return;
    }
    const std::string state =
        r && PQresultErrorField(r, PG_DIAG_SQLSTATE) ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : "";
    std::string why = r ? trimmed(PQresultErrorMessage(r)) : "";
    if (why.empty()) why = trimmed(PQerrorMessage(conn_));
    PQclear(r);
    if (PQstatus(conn_) != CONNECTION_OK) {
      lost_before_commit_ = in_transaction_ && !commit_sent_;
      // Dropped with its sessions (DROP DATABASE ... WITH (FORCE)): no resume would find it.
      if (auto gone = database_gone()) throw no_longer_exists(*gone);
      throw StoreError(fmt::format(
          "lost the connection to the {} ({}): nothing more is sent that no record keeps; "
          "`rollout resume` goes on once the server is back",
          name_, why));
    }
    if (state == "55P03" || state == "40P01") {
      throw StoreError(fmt::format(
          "{}: another process held a lock this write needs for over 10 s (one frozen or stuck "
          "in the middle of a write?); nothing was changed: try again",
          name_));
    }
    throw StoreError(fmt::format("{}: {} ({})", name_, why, what));
  }

  // Sends with `send` (one of libpq's PQsend* calls) and waits for the answer, at most
  // answer_timeout_: a server that stopped answering (frozen, or cut off without a reset)
  // is an error, not a hang. The result; of several, the first that failed, else the last.
  PGresult* ask(const std::function<int(PGconn*)>& send, std::string_view what) {
    if (broken_) {
      throw StoreError(fmt::format(
          "{}: its connection was given up (it stopped answering); nothing more is sent that no "
          "record keeps",
          name_));
    }
    if (!send(conn_)) return nullptr;  // check() says why, from PQerrorMessage
    const auto deadline = std::chrono::steady_clock::now() + answer_timeout_;
    while (PQisBusy(conn_)) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        broken_ = true;
        throw StoreError(fmt::format(
            "the {} did not answer within {} s ({}): stopping, so that nothing is sent that no "
            "record keeps; `rollout resume` goes on once it answers again",
            name_, answer_timeout_.count() / 1000.0, what.substr(0, 40)));
      }
      pollfd p{PQsocket(conn_), POLLIN, 0};
      ::poll(&p, 1, static_cast<int>(left.count()));
      if (!PQconsumeInput(conn_)) break;  // the connection failed: PQgetResult says so
    }
    const auto failed = [](PGresult* r) {
      return PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK;
    };
    PGresult* kept = nullptr;
    while (PGresult* r = PQgetResult(conn_)) {
      if (kept && failed(kept)) {
        PQclear(r);  // the first failure is the one to tell
        continue;
      }
      PQclear(kept);
      kept = r;
    }
    return kept;
  }
  PGresult* query(const std::string& sql) {
    return ask([&](PGconn* c) { return PQsendQuery(c, sql.c_str()); }, sql);
  }
  // The one number a statement without parameters answers.
  std::int64_t integer(const std::string& sql) {
    Cursor& c = prepared(sql);
    c.step();
    const std::int64_t value = c.integer(0);
    c.reset();
    return value;
  }

  PGconn* conn() { return conn_; }

 private:
  static std::string trimmed(const char* text) {
    std::string s = text ? text : "";
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    for (char& c : s) {
      if (c == '\n') c = ' ';
    }
    return s;
  }

  // As SQLite's busy timeout: a lock held by a process frozen mid-write is an error to try
  // again after, not a hang; a transaction left open by one is ended by the server.
  void configure() {
    exec("SET lock_timeout = '10s'; SET idle_in_transaction_session_timeout = '30s'");
  }

  void migrate() {
    const int latest = PostgresStore::latest_schema_version();
    const auto refuse_newer = [&](int current) {
      if (current > latest) {
        throw StoreError(fmt::format(
            "the {} has schema version {}, newer than this rollout knows ({}): use a newer "
            "rollout; nothing was changed",
            name_, current, latest));
      }
    };
    const int seen = schema_version();
    refuse_newer(seen);
    if (seen == latest) return;
    // Under a lock, read again: another machine's rollout may be migrating it right now.
    begin();
    try {
      exec(fmt::format("SELECT pg_advisory_xact_lock({})", kMigrationLock));
      exec("CREATE TABLE IF NOT EXISTS rollout_schema (version INTEGER NOT NULL)");
      const int current = schema_version();
      refuse_newer(current);
      for (int v = current; v < latest; ++v) {
        exec(std::string(postgres_migrations()[static_cast<std::size_t>(v)].sql));
      }
      exec(fmt::format("DELETE FROM rollout_schema; INSERT INTO rollout_schema VALUES ({})",
                       latest));
      commit();
    } catch (...) {
      rollback();
      throw;
    }
  }

  std::string name_;
  Millis answer_timeout_;
  Millis reconnect_for_;
  PGconn* conn_ = nullptr;
  bool broken_ = false;  // it stopped answering: no more queries on it (until made again)
  bool in_transaction_ = false;
  bool commit_sent_ = false;         // this transaction's COMMIT went out
  bool lost_before_commit_ = false;  // its connection was lost before that
  bool listening_ = false;
  std::map<std::string, std::unique_ptr<PgCursor>> cursors_;
};

// SQL written with `?` placeholders (as SQLite's), numbered $1, $2 ... for PostgreSQL;
// parameters and results travel as text.
class PgCursor : public Cursor {
 public:
  PgCursor(PgDatabase& db, const std::string& sql, std::string name)
      : db_(db), name_(std::move(name)) {
    bool quoted = false;
    int n = 0;
    for (char c : sql) {
      if (c == '\'') quoted = !quoted;
      if (c == '?' && !quoted) {
        sql_ += fmt::format("${}", ++n);
      } else {
        sql_ += c;
      }
    }
    params_.resize(static_cast<std::size_t>(n));
  }
  ~PgCursor() override { PQclear(result_); }

  void bind_null(int i) override { param(i) = std::nullopt; }
  void bind_integer(int i, std::int64_t v) override { param(i) = std::to_string(v); }
  void bind_text(int i, std::string_view v) override {
    // PostgreSQL's text holds no NUL; the state holds what a person can read anyway.
    std::string s;
    s.reserve(v.size());
    for (char c : v) {
      if (c == '\0') {
        s += "\xEF\xBF\xBD";
      } else {
        s += c;
      }
    }
    param(i) = std::move(s);
  }
  bool step() override {
    if (!result_) {
      execute();
      row_ = -1;
    }
    ++row_;
    return row_ < PQntuples(result_);
  }
  void reset() override {
    PQclear(result_);
    result_ = nullptr;
    for (auto& p : params_) p = std::nullopt;
  }
  std::int64_t integer(int col) const override {
    const char* v = PQgetvalue(result_, row_, col);
    std::int64_t out = 0;
    std::from_chars(v, v + PQgetlength(result_, row_, col), out);
    return out;
  }
  std::string text(int col) const override {
    return std::string(PQgetvalue(result_, row_, col),
                       static_cast<std::size_t>(PQgetlength(result_, row_, col)));
  }
  bool is_null(int col) const override { return PQgetisnull(result_, row_, col) != 0; }
  std::string column_name(int col) const override { return PQfname(result_, col); }

  // Prepared statements belong to a session: on a new connection they are prepared again.
  void forget_prepared() { prepared_ = false; }

 private:
  std::optional<std::string>& param(int i) { return params_.at(static_cast<std::size_t>(i - 1)); }

  void execute() {
    try {
      send();
    } catch (const StoreError&) {
      // A read outside a transaction, on a connection lost meanwhile: once it is made
      // again, read again (a read changes nothing, so it may be asked twice).
      if (!is_read() || db_.in_transaction() || !db_.lost() || !db_.reconnect()) throw;
      send();
    }
  }
  bool is_read() const { return sql_.rfind("SELECT", 0) == 0 || sql_.rfind("WITH", 0) == 0; }

  void send() {
    if (!prepared_) {
      db_.check(PQprepare(db_.conn(), name_.c_str(), sql_.c_str(), static_cast<int>(params_.size()),
                          nullptr),
                sql_);
      prepared_ = true;
    }
    std::vector<const char*> values;
    values.reserve(params_.size());
    for (const auto& p : params_) values.push_back(p ? p->c_str() : nullptr);
    PGresult* r = db_.ask(
        [&](PGconn* c) {
          return PQsendQueryPrepared(c, name_.c_str(), static_cast<int>(values.size()),
                                     values.data(), nullptr, nullptr, 0);
        },
        sql_);
    db_.check(r, sql_, false);
    result_ = r;
  }

  PgDatabase& db_;
  std::string name_;
  std::string sql_;
  std::vector<std::optional<std::string>> params_;
  bool prepared_ = false;
  PGresult* result_ = nullptr;
  int row_ = -1;
};

bool PgDatabase::reconnect() {
  if (in_transaction_ || (!broken_ && PQstatus(conn_) == CONNECTION_OK)) return false;
  if (reconnect_for_ <= Millis{0}) return false;  // --state-retry 0s: a lost connection ends it
  const auto deadline = std::chrono::steady_clock::now() + reconnect_for_;
  Millis wait{200};
  for (int attempt = 1;; ++attempt) {
    PQreset(conn_);
    if (PQstatus(conn_) == CONNECTION_OK) {
      broken_ = false;
      listening_ = false;  // LISTEN is the session's: the news channel is listened to again
      for (auto& [sql, cursor] : cursors_) cursor->forget_prepared();  // the session's too
      configure();
      return true;
    }
    const std::string why = trimmed(PQerrorMessage(conn_));
    if (why.find("does not exist") != std::string::npos) throw no_longer_exists(why);
    if (std::chrono::steady_clock::now() + wait > deadline) {
      throw StoreError(fmt::format(
          "lost the connection to the {} and could not make it again in {} attempt(s) over {} "
          "s ({}): nothing more is sent that no record keeps; `rollout resume` goes on once "
          "the server is back",
          name_, attempt, reconnect_for_.count() / 1000, why));
    }
    std::this_thread::sleep_for(wait);
    wait = std::min(wait * 2, Millis{5000});
  }
}

std::optional<std::string> PgDatabase::database_gone() {
  PQconninfoOption* options = PQconninfo(conn_);
  if (!options) return std::nullopt;
  std::vector<const char*> keys, values;
  for (const PQconninfoOption* o = options; o->keyword; ++o) {
    if (!o->val) continue;
    keys.push_back(o->keyword);
    values.push_back(o->val);
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);
  PGconn* probe = PQconnectdbParams(keys.data(), values.data(), 0);
  PQconninfoFree(options);
  std::optional<std::string> gone;
  if (PQstatus(probe) != CONNECTION_OK) {
    const std::string why = trimmed(PQerrorMessage(probe));
    if (why.find("does not exist") != std::string::npos) gone = why;
  }
  PQfinish(probe);
  return gone;
}

PgDatabase::~PgDatabase() {
  cursors_.clear();
  if (conn_) PQfinish(conn_);
}

Cursor& PgDatabase::prepared(const std::string& sql) {
  auto it = cursors_.find(sql);
  if (it != cursors_.end()) return *it->second;
  auto cursor = std::make_unique<PgCursor>(*this, sql, fmt::format("s{}", cursors_.size()));
  return *cursors_.emplace(sql, std::move(cursor)).first->second;
}

}  // namespace

PostgresStore::PostgresStore(const std::string& url, Millis answer_timeout, Millis reconnect_for)
    : SqlStore(std::make_unique<PgDatabase>(url, answer_timeout, reconnect_for)) {}

int PostgresStore::latest_schema_version() {
  return static_cast<int>(postgres_migrations().size());
}

}  // namespace rollout::store
