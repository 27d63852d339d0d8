// The SQLite RAII wrapper of the run database: a connection (unique_ptr with
// its closer), prepared statements (bind, step, reset, typed column reads) and a
// transaction object; every SQLite error becomes a RecordError naming the file.
//
// Internal to results/: included by the writer (recorder.cpp) and the reader
// (run_reader.cpp) only, never by a public header, so sqlite3.h stays inside
// results/. Everything that touches a connection goes through Database /
// Statement / Transaction below. The hot paths (binds, steps) are defined here,
// inline, as they were in the single recorder.cpp.
#pragma once

#include <sqlite3.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "results/recorder.h"

namespace mtf::sqlite {

// ---------------------------------------------------------------------------
// RAII wrapper
// ---------------------------------------------------------------------------

struct ConnectionCloser {
  void operator()(sqlite3* db) const noexcept { sqlite3_close_v2(db); }
};
struct StatementFinalizer {
  void operator()(sqlite3_stmt* s) const noexcept { sqlite3_finalize(s); }
};

/// One open connection; errors become RecordError naming the file.
class Database {
 public:
  Database(const std::filesystem::path& path, int flags) : path_(path) {
    sqlite3* raw = nullptr;
    const int rc = sqlite3_open_v2(path.string().c_str(), &raw, flags, nullptr);
    db_.reset(raw);  // sqlite3_open_v2 may hand out a handle even on failure
    if (rc != SQLITE_OK) {
      throw RecordError(path.string() + ": cannot open the database (" +
                        (raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc)) + ")");
    }
    sqlite3_extended_result_codes(raw, 1);
  }

  sqlite3* get() const noexcept { return db_.get(); }
  const std::filesystem::path& path() const noexcept { return path_; }
  /// Frees the connection's cached pages that it does not need now (between
  /// transactions: all of them); they are read again when next wanted.
  void release_memory() noexcept { sqlite3_db_release_memory(db_.get()); }
  /// Bytes of heap the connection's page cache holds now.
  std::int64_t cache_bytes() const noexcept {
    int used = 0, highwater = 0;
    sqlite3_db_status(db_.get(), SQLITE_DBSTATUS_CACHE_USED, &used, &highwater, 0);
    return used;
  }
  /// The rowid of the last row inserted on this connection.
  std::int64_t last_insert_rowid() const noexcept { return sqlite3_last_insert_rowid(db_.get()); }

  /// Runs constant SQL (never SQL with values spliced in: those are bound).
  void exec(const char* sql) {
    char* msg = nullptr;
    if (sqlite3_exec(db_.get(), sql, nullptr, nullptr, &msg) != SQLITE_OK) {
      std::string text = msg ? msg : sqlite3_errmsg(db_.get());
      sqlite3_free(msg);
      throw RecordError(path_.string() + ": " + text + " (while running: " + sql + ")");
    }
  }

  /// Primary result code of the last failed call (SQLITE_NOTADB, SQLITE_BUSY...).
  int error_code() const noexcept { return sqlite3_errcode(db_.get()) & 0xff; }

  [[noreturn]] void fail(std::string_view doing) const {
    throw RecordError(path_.string() + ": " + sqlite3_errmsg(db_.get()) + " (while " +
                      std::string(doing) + ")");
  }

 private:
  std::filesystem::path path_;
  std::unique_ptr<sqlite3, ConnectionCloser> db_;
};

/// A prepared statement, reused: bind, step, reset.
class Statement {
 public:
  Statement(Database& db, const char* sql) : db_(&db), sql_(sql) {
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v3(db.get(), sql, -1, SQLITE_PREPARE_PERSISTENT, &raw, nullptr) !=
        SQLITE_OK) {
      db.fail(std::string("preparing: ") + sql);
    }
    stmt_.reset(raw);
  }

  void bind(int i, std::int64_t v) { check(sqlite3_bind_int64(stmt_.get(), i, v)); }
  void bind(int i, int v) { check(sqlite3_bind_int(stmt_.get(), i, v)); }
  void bind(int i, double v) { check(sqlite3_bind_double(stmt_.get(), i, v)); }
  void bind_null(int i) { check(sqlite3_bind_null(stmt_.get(), i)); }
  /// Bytes as a blob, bound SQLITE_STATIC: `v` must outlive the step.
  void bind_bytes(int i, std::string_view v) {
    check(sqlite3_bind_blob64(stmt_.get(), i, v.data(), v.size(), SQLITE_STATIC));
  }
  /// Text is copied by SQLite (these statements are not on the hot path).
  void bind(int i, std::string_view v) {
    check(sqlite3_bind_text64(stmt_.get(), i, v.data(), v.size(), SQLITE_TRANSIENT,
                              SQLITE_UTF8));
  }
  void bind(int i, const std::optional<double>& v) {
    if (v) bind(i, *v);
    else bind_null(i);
  }
  /// Binds float32 little-endian bytes. Without copying on little-endian
  /// machines: `v` must stay alive and unchanged until reset()/clear_bindings().
  /// An empty vector becomes a zero-length blob when `empty_is_null` is false.
  void bind_floats(int i, std::span<const float> v, bool empty_is_null) {
    if (v.empty()) {
      check(empty_is_null ? sqlite3_bind_null(stmt_.get(), i)
                          : sqlite3_bind_zeroblob(stmt_.get(), i, 0));
      return;
    }
    if constexpr (std::endian::native == std::endian::little) {
      check(sqlite3_bind_blob64(stmt_.get(), i, v.data(), v.size_bytes(), SQLITE_STATIC));
    } else {
      std::vector<std::uint32_t> swapped(v.size());
      for (std::size_t k = 0; k < v.size(); ++k) {
        std::uint32_t u;
        std::memcpy(&u, &v[k], 4);
        swapped[k] = __builtin_bswap32(u);
      }
      check(sqlite3_bind_blob64(stmt_.get(), i, swapped.data(), v.size_bytes(),
                                SQLITE_TRANSIENT));
    }
  }

  /// Steps once: true when a row is available, false when done. Throws on error.
  bool step() {
    const int rc = sqlite3_step(stmt_.get());
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    sqlite3_reset(stmt_.get());
    db_->fail(std::string("running: ") + sql_);
  }
  /// Steps a statement that returns no rows, then resets it for the next use.
  void run() {
    step();
    reset();
  }
  void reset() noexcept { sqlite3_reset(stmt_.get()); }
  void clear_bindings() noexcept { sqlite3_clear_bindings(stmt_.get()); }

  bool is_null(int col) const { return sqlite3_column_type(stmt_.get(), col) == SQLITE_NULL; }
  std::int64_t int64(int col) const { return sqlite3_column_int64(stmt_.get(), col); }
  int int32(int col) const { return sqlite3_column_int(stmt_.get(), col); }
  double real(int col) const { return sqlite3_column_double(stmt_.get(), col); }
  std::string text(int col) const {
    const auto* p = sqlite3_column_text(stmt_.get(), col);
    const int n = sqlite3_column_bytes(stmt_.get(), col);
    return p ? std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(n))
             : std::string();
  }
  /// A blob (or text) column's bytes.
  std::string bytes(int col) const {
    const auto* p = static_cast<const char*>(sqlite3_column_blob(stmt_.get(), col));
    const int n = sqlite3_column_bytes(stmt_.get(), col);
    return p ? std::string(p, static_cast<std::size_t>(n)) : std::string();
  }
  std::optional<double> optional_real(int col) const {
    if (is_null(col)) return std::nullopt;
    return real(col);
  }
  /// NULL and zero-length blobs both read as an empty vector.
  std::vector<float> floats(int col, std::string_view column_name) const {
    const void* p = sqlite3_column_blob(stmt_.get(), col);
    const int n = sqlite3_column_bytes(stmt_.get(), col);
    if (n % 4 != 0) {
      throw RecordError(db_->path().string() + ": column " + std::string(column_name) +
                        " holds a blob of " + std::to_string(n) +
                        " bytes, expected float32 values (a multiple of 4 bytes): the file "
                        "is damaged or was not written by mtfsim");
    }
    std::vector<float> v(static_cast<std::size_t>(n / 4));
    if (n > 0) std::memcpy(v.data(), p, static_cast<std::size_t>(n));
    if constexpr (std::endian::native != std::endian::little) {
      for (float& x : v) {
        std::uint32_t u;
        std::memcpy(&u, &x, 4);
        u = __builtin_bswap32(u);
        std::memcpy(&x, &u, 4);
      }
    }
    return v;
  }

 private:
  void check(int rc) {
    if (rc != SQLITE_OK) [[unlikely]]
      db_->fail(std::string("binding a parameter of: ") + sql_);
  }

  Database* db_;
  const char* sql_;
  std::unique_ptr<sqlite3_stmt, StatementFinalizer> stmt_;
};

struct BlobCloser {
  void operator()(sqlite3_blob* b) const noexcept { sqlite3_blob_close(b); }
};

/// One blob value opened for incremental I/O (sqlite3_blob_open): read or
/// written in pieces at offsets, where a statement would assemble the whole
/// value in one record in memory (a second copy of a users' state, say).
/// The blob's size is fixed when its row is written (zeroblob(N) to write it
/// here afterwards).
class Blob {
 public:
  Blob(Database& db, const char* table, const char* column, std::int64_t rowid, bool writable)
      : db_(&db), what_(std::string(table) + "." + column + " of row " + std::to_string(rowid)) {
    sqlite3_blob* raw = nullptr;
    const int rc = sqlite3_blob_open(db.get(), "main", table, column, rowid, writable ? 1 : 0, &raw);
    blob_.reset(raw);
    if (rc != SQLITE_OK) db.fail("opening the blob " + what_);
  }
  std::size_t size() const noexcept { return static_cast<std::size_t>(sqlite3_blob_bytes(blob_.get())); }
  /// Writes `bytes` from offset `at`, in pieces of `piece` bytes; throws
  /// RecordError naming the sizes when they run past the blob's end.
  void write(std::string_view bytes, std::size_t at = 0, std::size_t piece = std::size_t{1} << 20) {
    if (at > size() || bytes.size() > size() - at)
      throw RecordError(db_->path().string() + ": " + std::to_string(bytes.size()) + " bytes at offset " +
                        std::to_string(at) + " run past the end of the blob " + what_ + " (" +
                        std::to_string(size()) + " bytes)");
    for (std::size_t done = 0; done < bytes.size(); done += piece) {
      const std::size_t n = std::min(piece, bytes.size() - done);
      if (sqlite3_blob_write(blob_.get(), bytes.data() + done, static_cast<int>(n), static_cast<int>(at + done)) !=
          SQLITE_OK)
        db_->fail("writing the blob " + what_);
    }
  }
  /// Reads the whole blob into `out` (resized to its size).
  void read_all(std::string& out, std::size_t piece = std::size_t{1} << 20) {
    out.resize(size());
    for (std::size_t done = 0; done < out.size(); done += piece) {
      const std::size_t n = std::min(piece, out.size() - done);
      if (sqlite3_blob_read(blob_.get(), out.data() + done, static_cast<int>(n), static_cast<int>(done)) != SQLITE_OK)
        db_->fail("reading the blob " + what_);
    }
  }

 private:
  Database* db_;
  std::string what_;
  std::unique_ptr<sqlite3_blob, BlobCloser> blob_;
};

/// BEGIN on construction; ROLLBACK in the destructor unless commit() was called.
class Transaction {
 public:
  explicit Transaction(Database& db) : db_(&db) { db.exec("BEGIN"); }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction() {
    if (db_) sqlite3_exec(db_->get(), "ROLLBACK", nullptr, nullptr, nullptr);
  }
  void commit() {
    db_->exec("COMMIT");  // on failure the destructor still rolls back
    db_ = nullptr;
  }

 private:
  Database* db_;
};

inline std::int64_t pragma_int(Database& db, const char* sql) {
  Statement st(db, sql);
  if (!st.step()) return 0;
  return st.int64(0);
}

/// Sets a pragma whose value is a number we compute; pragmas cannot take bound
/// parameters, and an integer formatted by std::to_string cannot inject SQL.
inline void set_pragma(Database& db, const char* name, std::int64_t value) {
  const std::string sql = std::string("PRAGMA ") + name + " = " + std::to_string(value);
  db.exec(sql.c_str());
}

}  // namespace mtf::sqlite
