#include "daemon/store/sqlite.h"

#include <sqlite3.h>

namespace ptbuild::sql {
namespace {
[[noreturn]] void fail(sqlite3* db, const std::string& what) {
  throw Error(what + ": " + (db ? sqlite3_errmsg(db) : "out of memory"),
              db ? sqlite3_errcode(db) : SQLITE_NOMEM);
}
}  // namespace

bool is_transient(int code) {
  return code == SQLITE_BUSY || code == SQLITE_LOCKED || code == SQLITE_FULL;
}

std::string advice(int code, const std::string& path) {
  switch (code) {
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_CANTOPEN:
      return "ptbuildd must be able to write " + path + " and its folder (check the owner, mode and mount)";
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return path +
             " is damaged: stop ptbuildd, move it aside, and restore a backup or recover it with "
             "`sqlite3 " +
             path + " .recover | sqlite3 new.db`; ptbuildd starts a new one where none is";
    case SQLITE_FULL:
      return "the disk of " + path + " is full: free space there";
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return "another process holds a lock on " + path + " (an sqlite3 shell, a backup): end it";
    case SQLITE_IOERR:
      return "reading or writing " + path + " failed: check the disk (dmesg)";
    default:
      return "check " + path;
  }
}

Db::Db(const std::string& path) {
  // NOFOLLOW: a database planted as a symlink is not opened through it.
  if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOFOLLOW,
                      nullptr) != SQLITE_OK) {
    std::string msg = "cannot open database " + path + ": " + (db_ ? sqlite3_errmsg(db_) : "");
    int code = db_ ? sqlite3_errcode(db_) : SQLITE_NOMEM;
    sqlite3_close(db_);
    db_ = nullptr;
    throw Error(msg, code);
  }
  // Another process holding a write lock (a backup, an operator's sqlite3 shell) makes us wait a
  // while instead of failing at once; not longer, because the event loop waits with us.
  sqlite3_busy_timeout(db_, 5'000);
}

Db::~Db() {
  for (auto& [sql, stmt] : idle_) sqlite3_finalize(stmt);
  sqlite3_close(db_);
}

sqlite3_stmt* Db::take_idle(std::string_view sql) {
  auto it = idle_.find(std::string(sql));
  if (it == idle_.end()) return nullptr;
  sqlite3_stmt* stmt = it->second;
  idle_.erase(it);
  return stmt;
}

void Db::give_back(sqlite3_stmt* stmt) {
  sqlite3_reset(stmt);
  sqlite3_clear_bindings(stmt);
  if (idle_.size() >= kMaxIdleStatements || !idle_.emplace(sqlite3_sql(stmt), stmt).second)
    sqlite3_finalize(stmt);
}

void Db::exec(const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errmsg(db_);
    sqlite3_free(err);
    throw Error(msg, sqlite3_errcode(db_));
  }
}

Statement Db::prepare(std::string_view sql) {
  return Statement(*this, sql);
}
int64_t Db::last_insert_rowid() const {
  return sqlite3_last_insert_rowid(db_);
}
int Db::changes() const {
  return sqlite3_changes(db_);
}
bool Db::read_only() const {
  return sqlite3_db_readonly(db_, "main") == 1;
}

Statement::Statement(Db& db, std::string_view sql) : owner_(&db), db_(db.handle()), stmt_(db.take_idle(sql)) {
  if (stmt_) return;
  if (sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt_, nullptr) != SQLITE_OK)
    fail(db_, "cannot prepare SQL '" + std::string(sql.substr(0, 60)) + "'");
}
Statement::~Statement() {
  if (stmt_) owner_->give_back(stmt_);
}
Statement::Statement(Statement&& other) noexcept : owner_(other.owner_), db_(other.db_), stmt_(other.stmt_) {
  other.stmt_ = nullptr;
}

Statement& Statement::bind(int index, int64_t v) {
  if (sqlite3_bind_int64(stmt_, index, v) != SQLITE_OK) fail(db_, "bind");
  return *this;
}
Statement& Statement::bind(int index, std::string_view v) {
  if (sqlite3_bind_text(stmt_, index, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT) != SQLITE_OK)
    fail(db_, "bind");
  return *this;
}
Statement& Statement::bind(int index, std::nullopt_t) {
  if (sqlite3_bind_null(stmt_, index) != SQLITE_OK) fail(db_, "bind");
  return *this;
}

bool Statement::step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  fail(db_, "SQL statement failed");
}
void Statement::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

bool Statement::is_null(int col) const {
  return sqlite3_column_type(stmt_, col) == SQLITE_NULL;
}
int64_t Statement::int64(int col) const {
  return sqlite3_column_int64(stmt_, col);
}
double Statement::real(int col) const {
  return sqlite3_column_double(stmt_, col);
}
std::string Statement::text(int col) const {
  const unsigned char* t = sqlite3_column_text(stmt_, col);
  return t ? std::string(reinterpret_cast<const char*>(t), sqlite3_column_bytes(stmt_, col)) : "";
}
std::optional<std::string> Statement::optional_text(int col) const {
  if (is_null(col)) return std::nullopt;
  return text(col);
}
std::optional<int64_t> Statement::optional_int64(int col) const {
  if (is_null(col)) return std::nullopt;
  return int64(col);
}

Transaction::Transaction(Db& db) : db_(db) {
  db_.exec("BEGIN IMMEDIATE");
}
Transaction::~Transaction() {
  if (open_) {
    try {
      db_.exec("ROLLBACK");
    } catch (...) {  // nothing sensible to do in a destructor; the connection stays usable
    }
  }
}
void Transaction::commit() {
  db_.exec("COMMIT");
  open_ = false;
}

}  // namespace ptbuild::sql
