import GRDB
import GRDBSQLite
import VigilCore

/// Binds and steps a GRDB-prepared statement through the SQLite C API, skipping the
/// per-value boxing of `StatementArguments` on the ingest hot path.
struct RawStatement {
    let statement: Statement
    var handle: OpaquePointer { statement.sqliteStatement }

    init(_ statement: Statement) { self.statement = statement }

    // SQLITE_TRANSIENT: SQLite copies the value before the call returns.
    static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    func bind(_ index: Int32, _ value: Int64?) {
        if let value { sqlite3_bind_int64(handle, index, value) } else { sqlite3_bind_null(handle, index) }
    }

    func bind(_ index: Int32, _ value: String?) {
        guard let value else { sqlite3_bind_null(handle, index); return }
        var copy = value
        copy.withUTF8 { buffer in
            bindUTF8(index, UnsafeRawBufferPointer(buffer))
        }
    }

    func bindText(_ index: Int32, _ utf8: [UInt8]) {
        utf8.withUnsafeBytes { raw in bindUTF8(index, raw) }
    }

    private func bindUTF8(_ index: Int32, _ raw: UnsafeRawBufferPointer) {
        if let base = raw.baseAddress, raw.count > 0 {
            sqlite3_bind_text(handle, index, base.assumingMemoryBound(to: CChar.self), Int32(raw.count), Self.transient)
        } else {
            "".withCString { _ = sqlite3_bind_text(handle, index, $0, 0, Self.transient) }
        }
    }

    func bind(_ index: Int32, _ key: EventKey) {
        key.withUnsafeBytes { raw in
            _ = sqlite3_bind_blob(handle, index, raw.baseAddress, Int32(raw.count), Self.transient)
        }
    }

    func bindBlob(_ index: Int32, _ bytes: [UInt8]) {
        bytes.withUnsafeBytes { raw in
            _ = sqlite3_bind_blob(handle, index, raw.baseAddress ?? UnsafeRawPointer(bitPattern: 1), Int32(raw.count), Self.transient)
        }
    }

    /// Steps a statement that returns no rows and resets it, keeping its bindings (to run it
    /// again with one value changed).
    func runKeepingBindings(_ db: Database) throws {
        let code = sqlite3_step(handle)
        sqlite3_reset(handle)
        try Self.check(code, db)
    }

    /// A zero-length blob: the rollup's stand-in for a missing value.
    func bindEmptyBlob(_ index: Int32) {
        sqlite3_bind_zeroblob(handle, index, 0)
    }

    /// Steps once: true when the statement produced a row. Resets it for the next use.
    func hasRow(_ db: Database) throws -> Bool {
        let code = sqlite3_step(handle)
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
        try Self.check(code, db)
        return code == SQLITE_ROW
    }

    /// Steps once and reads the first column as an integer (nil for no row or NULL).
    func int64(_ db: Database) throws -> Int64? {
        let code = sqlite3_step(handle)
        defer {
            sqlite3_reset(handle)
            sqlite3_clear_bindings(handle)
        }
        try Self.check(code, db)
        guard code == SQLITE_ROW, sqlite3_column_type(handle, 0) != SQLITE_NULL else { return nil }
        return sqlite3_column_int64(handle, 0)
    }

    /// Throws SQLite's error unless a step ended with a row or done.
    static func check(_ code: Int32, _ db: Database) throws {
        guard code == SQLITE_DONE || code == SQLITE_ROW else {
            throw DatabaseError(resultCode: ResultCode(rawValue: code), message: String(cString: sqlite3_errmsg(db.sqliteConnection)))
        }
    }

    /// The first row of a query, read by `read`; nil when there is none. Resets the statement.
    func firstRow<T>(_ db: Database, _ read: (Columns) -> T) throws -> T? {
        let code = sqlite3_step(handle)
        defer {
            sqlite3_reset(handle)
            sqlite3_clear_bindings(handle)
        }
        try Self.check(code, db)
        return code == SQLITE_ROW ? read(Columns(handle: handle)) : nil
    }

    /// The current row's columns.
    struct Columns {
        let handle: OpaquePointer
        func int64(_ index: Int32) -> Int64 { sqlite3_column_int64(handle, index) }
    }

    /// Steps to the next row of a query, without resetting: false once it is done.
    func nextRow(_ db: Database) throws -> Bool {
        let code = sqlite3_step(handle)
        try Self.check(code, db)
        return code == SQLITE_ROW
    }

    /// Steps a statement that returns no rows (an insert) and resets it for the next row.
    func run(_ db: Database) throws {
        _ = try hasRow(db)
    }
}
