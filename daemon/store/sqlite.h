// A thin RAII layer over the sqlite3 C API. Only the store uses it.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>

struct sqlite3;
struct sqlite3_stmt;

namespace ptbuild::sql {

struct Error : std::runtime_error {
  explicit Error(const std::string& what, int sqlite_code = 0)
      : std::runtime_error(what), code(sqlite_code) {}
  int code;  // SQLite's primary result code (SQLITE_READONLY, SQLITE_FULL, …), 0 if none
};

// What an operator should do about an error of this code on the database at `path`, in words.
std::string advice(int code, const std::string& path);
// A lock held by another process or a full disk: may pass without an operator.
bool is_transient(int code);

class Statement;

class Db {
 public:
  explicit Db(const std::string& path);
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  void exec(const std::string& sql);
  Statement prepare(std::string_view sql);
  int64_t last_insert_rowid() const;
  int changes() const;
  bool read_only() const;  // opened read-only because the file may not be written
  sqlite3* handle() { return db_; }

 private:
  friend class Statement;
  // Prepared statements kept for the next use of the same SQL: parsing costs more than most
  // of the daemon's queries (a `status` under load spent half its time in sqlite3_prepare).
  // A statement in use is out of the map, so the same SQL may run nested.
  static constexpr size_t kMaxIdleStatements = 128;
  sqlite3_stmt* take_idle(std::string_view sql);
  void give_back(sqlite3_stmt* stmt);

  sqlite3* db_ = nullptr;
  std::unordered_map<std::string, sqlite3_stmt*> idle_;
};

class Statement {
 public:
  Statement(Db& db, std::string_view sql);
  ~Statement();
  Statement(Statement&& other) noexcept;  // `other` is left empty
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  Statement& operator=(Statement&&) = delete;

  // Binds by 1-based position; returns *this to chain.
  Statement& bind(int index, int64_t v);
  Statement& bind(int index, int v) { return bind(index, static_cast<int64_t>(v)); }
  Statement& bind(int index, std::string_view v);
  Statement& bind(int index, const char* v) { return bind(index, std::string_view(v)); }
  Statement& bind(int index, const std::string& v) { return bind(index, std::string_view(v)); }
  Statement& bind(int index, std::nullopt_t);
  template <class T>
  Statement& bind(int index, const std::optional<T>& v) {
    return v ? bind(index, *v) : bind(index, std::nullopt);
  }

  bool step();  // true while a row is available
  void run() {  // for statements that return no rows
    while (step()) {
    }
  }
  void reset();

  bool is_null(int col) const;
  int64_t int64(int col) const;
  int integer(int col) const { return static_cast<int>(int64(col)); }
  double real(int col) const;
  std::string text(int col) const;
  std::optional<std::string> optional_text(int col) const;
  std::optional<int64_t> optional_int64(int col) const;

 private:
  Db* owner_;
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

// BEGIN IMMEDIATE ... COMMIT; rolls back when destroyed uncommitted (an exception flew).
class Transaction {
 public:
  explicit Transaction(Db& db);
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  void commit();

 private:
  Db& db_;
  bool open_ = true;
};

}  // namespace ptbuild::sql
