import CSQLiteConfig
import Foundation
import GRDB
import GRDBSQLite
import Logging
import Metrics
import Synchronization
import VigilCore
import VigilQuery
import VigilStorage

/// The embedded event store: one SQLite database per tenant per UTC day, in WAL mode,
/// with normalized columns for common ECS fields, the full document as JSON, and an FTS5
/// token index over `message`.
///
/// Layout under the data directory:
/// ```
/// events/<tenant>/<yyyymmdd>.sqlite   events of that tenant and day
/// events/<tenant>/tenant.sqlite       idempotency keys and quarantine of that tenant
/// ```
/// Partitions are separate files so that retention drops a whole day with one unlink and
/// tenants can never see each other's rows.
public final class SQLiteEventStore: EventStore {
    public let directory: URL
    private let logger: Logger
    /// Row ids a millisecond takes before its events spill into the next (`insert`): all of
    /// them (`1 << positionBits`) but in tests, which fill a millisecond with a few events.
    let positionsPerMillisecond: Int64
    /// Day partitions kept open when no one uses them (`PartitionCache`).
    let maxOpenPartitions: Int
    private let partitions = Mutex(PartitionCache())
    private let tenantDatabases = Mutex<[TenantName: DatabasePool]>([:])
    /// Databases written since the writer was last idle, by path.
    private let dirty = Mutex<[String: DatabasePool]>([:])
    /// Per tenant: a filter over the key table, so ingest looks up only keys it cannot prove new.
    private let keyFilters = Mutex<[TenantName: KeyFilter]>([:])

    /// Process-wide SQLite settings, made once before the first connection opens (every
    /// Vigil database opens through `openPool`): see `vigil_sqlite_disable_memstatus`.
    static let processSettings: Void = { _ = vigil_sqlite_disable_memstatus() }()

    func markDirty(_ pool: DatabasePool) {
        dirty.withLock { $0[pool.path] = pool }
    }

    /// Creates the store rooted at `<dataDirectory>/events`.
    public convenience init(dataDirectory: URL, logger: Logger) throws {
        try self.init(dataDirectory: dataDirectory, logger: logger, positionsPerMillisecond: Self.positionsPerMillisecond, maxOpenPartitions: Self.maxOpenPartitions)
    }

    /// Every row id of a millisecond, and the open partitions kept: what the server uses.
    static let positionsPerMillisecond: Int64 = 1 << positionBits
    static let maxOpenPartitions = 64

    init(dataDirectory: URL, logger: Logger, positionsPerMillisecond: Int64 = SQLiteEventStore.positionsPerMillisecond,
         maxOpenPartitions: Int = SQLiteEventStore.maxOpenPartitions) throws {
        precondition((1...(1 << Self.positionBits)).contains(positionsPerMillisecond) && maxOpenPartitions >= 1)
        self.maxOpenPartitions = maxOpenPartitions
        directory = dataDirectory.appendingPathComponent("events", isDirectory: true)
        self.logger = logger
        self.positionsPerMillisecond = positionsPerMillisecond
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    // MARK: - Databases

    /// One open day partition: its pool, the dictionaries its event bodies are compressed
    /// with, and what its writer keeps between batches.
    final class Partition: Sendable {
        let pool: DatabasePool
        let codec: BodyCodec
        let terms: TermTable
        let day: Int64
        let writer = Mutex(WriterState())

        init(pool: DatabasePool, codec: BodyCodec, terms: TermTable, day: Int64) {
            self.pool = pool
            self.codec = codec
            self.terms = terms
            self.day = day
        }

        struct WriterState {
            /// Bodies kept to train the partition's dictionary on, until it has one.
            var samples: [[UInt8]] = []
            var trainingAttempts = 0
        }
    }

    /// - Parameter secureDelete: whether deleted content is overwritten with zeros (SQLite's
    ///   default in Debian's build). Day partitions turn it off: nothing is deleted from them
    ///   (retention unlinks the whole file), yet every page split and token-index merge paid
    ///   for it. The tenant database keeps it: quarantined raw input is deleted from it.
    static func configuration(readonly: Bool = false, codec: BodyCodec? = nil, terms: TermTable? = nil, secureDelete: Bool = true) -> Configuration {
        var config = Configuration()
        config.readonly = readonly
        config.busyMode = .timeout(10)
        config.prepareDatabase { db in
            // FULL: a committed batch survives power loss, so the intake checkpoint that
            // follows it never points past data that is not on disk.
            try db.execute(sql: "PRAGMA synchronous = FULL")
            if !secureDelete { try db.execute(sql: "PRAGMA secure_delete = OFF") }
            // Index pages of random values (client-given idempotency keys, user names) are
            // touched all over: keep them in memory (the cache grows only as pages are used)
            // and read through mmap.
            try db.execute(sql: "PRAGMA cache_size = -32768")
            try db.execute(sql: "PRAGMA mmap_size = 268435456")
            // Checkpoint the WAL every ~32 MiB rather than every 4 MiB: ingest batches are
            // megabytes each, and each checkpoint copies and syncs pages again.
            try db.execute(sql: "PRAGMA wal_autocheckpoint = 8192")
            // After a checkpoint the log is cut back to 16 MiB instead of keeping its peak size.
            try db.execute(sql: "PRAGMA journal_size_limit = 16777216")
            db.add(function: SQLiteEventStore.cidrFunction)
            db.add(function: SQLiteEventStore.phraseFunction)
            if let codec {
                // Per connection: the reader remembers the last body it decoded, so a row's
                // `vigil_doc` and `vigil_message` (or two predicates on it) decompress it once.
                let reader = BodyReader(codec: codec)
                for function in reader.functions { db.add(function: function) }
            }
            for function in terms?.functions ?? [] { db.add(function: function) }
        }
        return config
    }

    func tenantDirectory(_ tenant: TenantName) -> URL {
        directory.appendingPathComponent(tenant.rawValue, isDirectory: true)
    }

    func partitionURL(_ tenant: TenantName, day: Int64) -> URL {
        tenantDirectory(tenant).appendingPathComponent("\(Timestamp.dayStamp(day)).sqlite")
    }

    /// Open day partitions, and when each was last asked for.
    ///
    /// Every open partition holds file descriptors (the database, its log and shared memory,
    /// per connection) and page caches: a tenant with a year of retention, or a year of old
    /// logs imported at once, would otherwise keep hundreds open and run out of descriptors
    /// (the pipeline then retried its batch forever and searches failed). Past
    /// `maxOpenPartitions`, asking for one drops the least recently used partitions that no
    /// one holds: only the cache references them, so no search, claim or insert is using them
    /// (searches hold the partition, not only its pool, for that). A dropped partition's pool
    /// closes its connections as it is freed, which checkpoints its log. Partitions in use
    /// are never dropped, so the bound is soft: a batch spanning more days holds them all
    /// until it is written.
    struct PartitionCache: ~Copyable {
        var open: [String: Partition] = [:]
        var lastUse: [String: UInt64] = [:]
        var tick: UInt64 = 0

        mutating func use(_ key: String) {
            tick += 1
            lastUse[key] = tick
        }

        /// Forgets idle partitions, least recently used first, handing each to `dropping`,
        /// until at most `limit` are open.
        mutating func dropIdle(keepingAtMost limit: Int, dropping: (Partition) -> Void) {
            guard open.count > limit else { return }
            for (key, _) in lastUse.sorted(by: { $0.value < $1.value }) {
                guard open.count > limit else { return }
                guard var partition = open.removeValue(forKey: key) else { continue }
                if isKnownUniquelyReferenced(&partition) {
                    lastUse[key] = nil
                    dropping(partition)
                } else {
                    open[key] = partition
                }
            }
        }
    }

    /// Partitions open now (tests).
    var openPartitionCount: Int { partitions.withLock { $0.open.count } }

    /// The partition of a tenant and day, created when `create` is set; nil if it does not exist.
    ///
    /// Opening happens under one lock, so a search and the pipeline never open the same file
    /// twice or see it before its schema exists.
    func partition(_ tenant: TenantName, day: Int64, create: Bool) throws -> Partition? {
        let key = "\(tenant.rawValue)/\(day)"
        // Freed when this returns, outside the lock: freeing a pool closes its connections,
        // and the last one checkpoints its log.
        var dropped: [Partition] = []
        defer { dropped.removeAll() }
        return try partitions.withLock { cache throws -> Partition? in
            // Not closed explicitly: the pool closes its connections when its last holder
            // lets go of it (an idle checkpoint may be running on it now).
            func drop(_ partition: Partition) {
                _ = dirty.withLock { $0.removeValue(forKey: partition.pool.path) }
                dropped.append(partition)
            }
            if let partition = cache.open[key] {
                // Held here, so not closed itself; the others a wide batch or search left
                // open are closed as soon as they are idle.
                cache.use(key)
                cache.dropIdle(keepingAtMost: maxOpenPartitions, dropping: drop)
                return partition
            }
            let url = partitionURL(tenant, day: day)
            if !create, !FileManager.default.fileExists(atPath: url.path) { return nil }
            cache.dropIdle(keepingAtMost: maxOpenPartitions - 1, dropping: drop)
            let codec = BodyCodec()
            let terms = TermTable()
            let pool = try Self.openPool(url, migrator: Self.partitionMigrator(day: day), codec: codec, terms: terms, secureDelete: false)
            try pool.read { db in
                for row in try Row.fetchAll(db, sql: "SELECT id, dict FROM zdict") {
                    let bytes: Data = row["dict"]
                    if let dictionary = ZstdDictionary(id: row["id"], bytes: Array(bytes)) { codec.add(dictionary) }
                }
                for row in try Row.fetchAll(db, sql: "SELECT id, value FROM term") {
                    terms.add(id: row["id"], value: row["value"])
                }
            }
            let partition = Partition(pool: pool, codec: codec, terms: terms, day: day)
            cache.open[key] = partition
            cache.use(key)
            return partition
        }
    }

    func tenantDatabase(_ tenant: TenantName) throws -> DatabasePool {
        try tenantDatabases.withLock { cache throws -> DatabasePool in
            if let pool = cache[tenant] { return pool }
            let pool = try Self.openPool(tenantDirectory(tenant).appendingPathComponent("tenant.sqlite"), migrator: Self.tenantMigrator)
            cache[tenant] = pool
            return pool
        }
    }

    /// The tenant's key filter. The first call creates it and loads the keys already in the
    /// table in the background; claims made from then on add their keys themselves (every
    /// claim asks for the filter first, so none can commit unseen by both).
    func keyFilter(_ tenant: TenantName, pool: DatabasePool) -> KeyFilter {
        let (filter, created) = keyFilters.withLock { filters -> (KeyFilter, Bool) in
            if let filter = filters[tenant] { return (filter, false) }
            let filter = KeyFilter()
            filters[tenant] = filter
            return (filter, true)
        }
        guard created else { return filter }
        let logger = logger
        Task.detached {
            do {
                let loaded = try await pool.read { db -> Int in
                    let statement = RawStatement(try db.makeStatement(sql: "SELECT key FROM event_key"))
                    var keys: [EventKey] = []
                    var total = 0
                    while try statement.nextRow(db) {
                        let count = Int(sqlite3_column_bytes(statement.handle, 0))
                        if let blob = sqlite3_column_blob(statement.handle, 0) {
                            keys.append(EventKey(bytes: Array(UnsafeRawBufferPointer(start: blob, count: count))))
                        }
                        if keys.count == 16_384 {
                            filter.insert(keys)
                            total += keys.count
                            keys.removeAll(keepingCapacity: true)
                        }
                    }
                    filter.insert(keys)
                    return total + keys.count
                }
                filter.markLoaded()
                logger.debug("Key filter loaded", metadata: ["tenant": "\(tenant)", "keys": "\(loaded)"])
            } catch {
                // The filter stays unloaded: ingest keeps looking every key up, as without it.
                logger.warning("Key filter could not be loaded; duplicate checks look up every key", metadata: ["tenant": "\(tenant)", "error": "\(error)"])
            }
        }
        return filter
    }

    /// Opens (creating when needed) a WAL database with Vigil's settings and migrates it.
    static func openPool(_ url: URL, migrator: DatabaseMigrator, codec: BodyCodec? = nil, terms: TermTable? = nil, secureDelete: Bool = true) throws -> DatabasePool {
        Self.processSettings
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let pool = try DatabasePool(path: url.path, configuration: configuration(codec: codec, terms: terms, secureDelete: secureDelete))
        try migrator.migrate(pool)
        return pool
    }

    /// Days that have a partition file for the tenant, ascending.
    func existingDays(_ tenant: TenantName) -> [Int64] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: tenantDirectory(tenant).path)) ?? []
        return names.compactMap { name -> Int64? in
            guard name.hasSuffix(".sqlite") else { return nil }
            return Timestamp.day(fromStamp: String(name.dropLast(7)))
        }.sorted()
    }

    // Shipped migrations never change: add new ones instead.
    static func partitionMigrator(day: Int64) -> DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE event (
                    id INTEGER PRIMARY KEY,
                    ts INTEGER NOT NULL,
                    ingested INTEGER NOT NULL,
                    key BLOB NOT NULL UNIQUE,
                    dataset TEXT,
                    host_name TEXT,
                    source_ip TEXT,
                    source_port INTEGER,
                    destination_ip TEXT,
                    destination_port INTEGER,
                    network_transport TEXT,
                    user_name TEXT,
                    event_action TEXT,
                    event_outcome TEXT,
                    observer_vendor TEXT,
                    message TEXT,
                    doc TEXT NOT NULL
                );
                CREATE INDEX event_ts ON event(ts);
                CREATE VIRTUAL TABLE event_fts USING fts5(
                    message, content='event', content_rowid='id', tokenize='unicode61 remove_diacritics 2'
                );
                """)
        }
        // v2: row ids follow time (`position(of:)`), so a time range is a rowid range and the
        // token index yields matches newest first; the ts index goes, an index on the receive
        // time (for live tail) comes. Existing rows get their new ids in (ts, old id) order.
        migrator.registerMigration("v2") { db in
            try db.execute(sql: """
                CREATE TABLE event_v2 (
                    id INTEGER PRIMARY KEY,
                    ts INTEGER NOT NULL,
                    ingested INTEGER NOT NULL,
                    key BLOB NOT NULL UNIQUE,
                    dataset TEXT,
                    host_name TEXT,
                    source_ip TEXT,
                    source_port INTEGER,
                    destination_ip TEXT,
                    destination_port INTEGER,
                    network_transport TEXT,
                    user_name TEXT,
                    event_action TEXT,
                    event_outcome TEXT,
                    observer_vendor TEXT,
                    message TEXT,
                    doc TEXT NOT NULL
                );
                INSERT INTO event_v2
                    SELECT (((ts % 86400000) + 86400000) % 86400000) * 1048576 + (row_number() OVER (PARTITION BY ts ORDER BY id) - 1),
                           ts, ingested, key, dataset, host_name, source_ip, source_port, destination_ip, destination_port,
                           network_transport, user_name, event_action, event_outcome, observer_vendor, message, doc
                    FROM event;
                DROP TABLE event_fts;
                DROP TABLE event;
                ALTER TABLE event_v2 RENAME TO event;
                CREATE INDEX event_ingested ON event(ingested);
                CREATE VIRTUAL TABLE event_fts USING fts5(
                    message, content='event', content_rowid='id', tokenize='unicode61 remove_diacritics 2'
                );
                INSERT INTO event_fts(event_fts) VALUES ('rebuild');
                """)
        }
        // v3: indexes for the fields analysts filter and group by most (only rows that have the
        // field: a firewall log has no user, an auth log no destination), and the minute of day
        // (from the row id) for timecharts. Equality on an indexed field walks the index in row
        // id order, so it is newest first with no sort; a stats by an indexed field, or a
        // timechart, reads a small covering index instead of the rows.
        migrator.registerMigration("v3") { db in
            try db.execute(sql: """
                CREATE INDEX IF NOT EXISTS event_dataset ON event(dataset) WHERE dataset IS NOT NULL;
                CREATE INDEX IF NOT EXISTS event_host ON event(host_name) WHERE host_name IS NOT NULL;
                CREATE INDEX IF NOT EXISTS event_user ON event(user_name) WHERE user_name IS NOT NULL;
                CREATE INDEX IF NOT EXISTS event_source_ip ON event(source_ip) WHERE source_ip IS NOT NULL;
                CREATE INDEX IF NOT EXISTS event_destination_ip ON event(destination_ip) WHERE destination_ip IS NOT NULL;
                CREATE INDEX IF NOT EXISTS event_minute ON event((id >> 20) / 60000);
                """)
        }
        // v4: event counts per minute of day, dataset and host, kept with every insert, so the
        // volume views (`* | timechart count()`, `* | stats count() by event.dataset`, by
        // host.name) read a few thousand rows instead of every event. A missing dataset or
        // host is stored as an empty blob: a primary key cannot hold NULL, and a blob never
        // equals a text value.
        migrator.registerMigration("v4") { db in
            try db.execute(sql: """
                CREATE TABLE rollup (
                    minute INTEGER NOT NULL,
                    dataset NOT NULL,
                    host_name NOT NULL,
                    events INTEGER NOT NULL,
                    PRIMARY KEY (minute, dataset, host_name)
                ) WITHOUT ROWID;
                INSERT INTO rollup (minute, dataset, host_name, events)
                    SELECT (id >> 20) / 60000, coalesce(dataset, x''), coalesce(host_name, x''), count(*)
                    FROM event GROUP BY 1, 2, 3;
                """)
        }
        // v5: compact rows. `message` and the document (less the fields the columns hold) are
        // one zstd blob (`EventBody`, with the partition's trained dictionaries in `zdict`);
        // the low-cardinality columns hold ids of `term` values (`TermTable`: no type affinity,
        // so a value past the table's capacity is kept as text);
        // `ts` is computed from the row id instead of stored; the key loses its unique index
        // (the tenant's key table decides duplicates, `partition_state` makes replays
        // idempotent); the minute index goes (rollups answer whole minutes); the token index
        // keeps rowids only (`detail=none`: phrases are checked on the message, see
        // `SQLiteDialect`) and reads its text through the `event_text` view.
        migrator.registerMigration("v5") { db in
            let dayStart = day * Timestamp.millisPerDay
            try db.execute(sql: """
                CREATE TABLE zdict (id INTEGER PRIMARY KEY, dict BLOB NOT NULL);
                CREATE TABLE term (id INTEGER PRIMARY KEY, value TEXT NOT NULL UNIQUE);
                INSERT INTO term (value)
                    SELECT dataset FROM event WHERE dataset IS NOT NULL UNION SELECT host_name FROM event WHERE host_name IS NOT NULL
                    UNION SELECT network_transport FROM event WHERE network_transport IS NOT NULL
                    UNION SELECT event_action FROM event WHERE event_action IS NOT NULL
                    UNION SELECT event_outcome FROM event WHERE event_outcome IS NOT NULL
                    UNION SELECT observer_vendor FROM event WHERE observer_vendor IS NOT NULL;
                CREATE TABLE partition_state (id INTEGER PRIMARY KEY CHECK (id = 1), generation INTEGER NOT NULL, position INTEGER NOT NULL);
                CREATE TABLE event_v5 (
                    id INTEGER PRIMARY KEY,
                    ingested INTEGER NOT NULL,
                    key BLOB NOT NULL,
                    dataset,
                    host_name,
                    source_ip TEXT,
                    source_port INTEGER,
                    destination_ip TEXT,
                    destination_port INTEGER,
                    network_transport,
                    user_name TEXT,
                    event_action,
                    event_outcome,
                    observer_vendor,
                    body BLOB NOT NULL,
                    ts INTEGER GENERATED ALWAYS AS (\(dayStart) + (id >> \(positionBits))) VIRTUAL
                );
                INSERT INTO event_v5 (id, ingested, key, dataset, host_name, source_ip, source_port, destination_ip, destination_port,
                                      network_transport, user_name, event_action, event_outcome, observer_vendor, body)
                    SELECT id, ingested, key, (SELECT id FROM term WHERE value = dataset), (SELECT id FROM term WHERE value = host_name),
                           source_ip, source_port, destination_ip, destination_port, (SELECT id FROM term WHERE value = network_transport),
                           user_name, (SELECT id FROM term WHERE value = event_action), (SELECT id FROM term WHERE value = event_outcome),
                           (SELECT id FROM term WHERE value = observer_vendor), vigil_pack(message, doc)
                    FROM event;
                DROP TABLE event_fts;
                DROP TABLE event;
                ALTER TABLE event_v5 RENAME TO event;
                CREATE INDEX event_ingested ON event(ingested);
                CREATE INDEX event_dataset ON event(dataset) WHERE dataset IS NOT NULL;
                CREATE INDEX event_host ON event(host_name) WHERE host_name IS NOT NULL;
                CREATE INDEX event_user ON event(user_name) WHERE user_name IS NOT NULL;
                CREATE INDEX event_source_ip ON event(source_ip) WHERE source_ip IS NOT NULL;
                CREATE INDEX event_destination_ip ON event(destination_ip) WHERE destination_ip IS NOT NULL;
                CREATE VIEW event_text AS SELECT id, vigil_message(body) AS message FROM event;
                CREATE VIRTUAL TABLE event_fts USING fts5(
                    message, content='event_text', content_rowid='id', detail=none, columnsize=0,
                    tokenize='unicode61 remove_diacritics 2'
                );
                INSERT INTO event_fts(event_fts) VALUES ('rebuild');
                """)
        }
        // v6: source and destination addresses are found through the token index, one token
        // per value (`SQLiteDialect.tokenColumns`), instead of B-tree indexes of their own:
        // nearly unique values made each insert a page write somewhere in those indexes, and
        // at a million events a day the two cost the writer a third of its time. The tokens
        // of rows already stored are added here; the index never has to reproduce them from
        // `event_text` (nothing deletes from it), so they need not be in the view.
        migrator.registerMigration("v6") { db in
            try db.execute(sql: """
                DROP INDEX IF EXISTS event_source_ip;
                DROP INDEX IF EXISTS event_destination_ip;
                INSERT INTO event_fts (rowid, message)
                    SELECT id, trim(coalesce('\(SQLiteDialect.sourceAddressMarker)' || lower(hex(source_ip)), '') || ' '
                                    || coalesce('\(SQLiteDialect.destinationAddressMarker)' || lower(hex(destination_ip)), ''))
                    FROM event WHERE source_ip IS NOT NULL OR destination_ip IS NOT NULL;
                """)
        }
        // v7: the token index merges its segments sixteen at a time (FTS5's most) instead of
        // four. Each batch flushes a segment and every merge rewrites the postings it takes
        // in; with sixteen they are rewritten less often. Indexing 600k of the syslog bench's
        // lines in batches of 1,000 (Python's sqlite3 on the same libsqlite3): 9.2-9.5 -> 6.3-7.3
        // µs of CPU per row; a term query 0.037-0.051 -> 0.045-0.048 ms.
        migrator.registerMigration("v7") { db in
            try db.execute(sql: "INSERT INTO event_fts (event_fts, rank) VALUES ('automerge', \(tokenIndexAutomerge))")
        }
        // v8: the token index keeps up to 64 MiB of a transaction's new postings in memory
        // (FTS5 `hashsize`) instead of 1 MiB. A batch of 40,000 syslog lines holds several MiB
        // of them, so with 1 MiB FTS5 flushed a segment every few thousand rows, and merged
        // them again later; now a batch is one segment, written at its commit (where FTS5
        // flushes whatever the size). The memory is only taken as a batch fills it. 300,000
        // of the syslog bench's lines in batches of 40,000 (Python's sqlite3 on the same
        // libsqlite3, 2026-12-05): 7.9 -> 6.6 µs of CPU per row.
        migrator.registerMigration("v8") { db in
            try db.execute(sql: "INSERT INTO event_fts (event_fts, rank) VALUES ('hashsize', \(tokenIndexHashBytes))")
        }
        return migrator
    }

    /// Segments of one level the token index merges at a time (FTS5 `automerge`).
    static let tokenIndexAutomerge = 16

    /// Bytes of new postings the token index holds in memory before it writes a segment
    /// (FTS5 `hashsize`; it also writes one at each commit).
    static let tokenIndexHashBytes = 64 << 20

    /// Bits of a row id below the millisecond: up to 2^20 events per millisecond per tenant.
    static let positionBits: Int64 = 20

    /// The first row id of a millisecond in its day partition: ids sort like timestamps.
    static func position(of timestamp: EpochMillis) -> Int64 {
        (timestamp - Timestamp.day(of: timestamp) * Timestamp.millisPerDay) << positionBits
    }

    /// The row ids of `[from, to)` inside the partition of `day`.
    static func positions(day: Int64, from: EpochMillis, to: EpochMillis) -> (lower: Int64, upper: Int64) {
        let start = day * Timestamp.millisPerDay
        let lower = max(from, start) - start
        let upper = min(to, start + Timestamp.millisPerDay) - start
        return (lower << positionBits, upper << positionBits)
    }

    static let tenantMigrator: DatabaseMigrator = {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE event_key (key BLOB PRIMARY KEY, day INTEGER NOT NULL) WITHOUT ROWID;
                CREATE TABLE quarantine (
                    id INTEGER PRIMARY KEY,
                    received INTEGER NOT NULL,
                    reason TEXT NOT NULL,
                    detail TEXT NOT NULL,
                    source TEXT NOT NULL,
                    raw BLOB NOT NULL
                );
                CREATE INDEX quarantine_received ON quarantine(received);
                """)
        }
        // v2: which intake record claimed each key (`IntakeSequence.token`), so the same
        // record replayed after a crash is told apart from a second copy of the event; and the
        // record of each quarantined item, so a replay does not quarantine it twice.
        migrator.registerMigration("v2") { db in
            try db.execute(sql: """
                ALTER TABLE event_key ADD COLUMN sequence INTEGER;
                ALTER TABLE quarantine ADD COLUMN sequence INTEGER;
                CREATE UNIQUE INDEX quarantine_sequence ON quarantine(sequence) WHERE sequence IS NOT NULL;
                """)
        }
        return migrator
    }()

    // MARK: - Writing

    /// Stores a batch: first the tenant's key table decides which events are new (a key
    /// already claimed by another record is a duplicate), then each day partition gets its
    /// new events. A crash between the two is repaired by the replay: the key table knows the
    /// replayed record claimed the key itself, and a partition skips records at or below the
    /// last sequence it committed.
    public func write(events: [StoredEvent], quarantined: [QuarantineItem]) async throws -> Int {
        try await writeClaiming(events: events, quarantined: quarantined).stored
    }

    public func writeClaiming(events: [StoredEvent], quarantined: [QuarantineItem]) async throws -> (stored: Int, claimed: [StoredEvent]) {
        let batch = try await claim(events: events, quarantined: quarantined)
        return (try await insert(batch), batch.claimed)
    }

    /// Claims the keys in each tenant's key table, then builds each day partition's rows
    /// (bodies encoded and compressed, terms interned) outside any transaction.
    public func claim(events: [StoredEvent], quarantined: [QuarantineItem]) async throws -> ClaimedBatch {
        var claimed: [StoredEvent] = []
        var rows: [PartitionRows] = []
        let eventsByTenant = Dictionary(uniqueKeysWithValues: Self.groups(events, by: \.tenant))
        let quarantineByTenant = Dictionary(grouping: quarantined, by: \.tenant)
        for tenant in Set(eventsByTenant.keys).union(quarantineByTenant.keys).sorted() {
            let fresh = try await claimKeys(tenant, events: eventsByTenant[tenant] ?? [], quarantined: quarantineByTenant[tenant] ?? [])
            if claimed.isEmpty { claimed = fresh } else { claimed += fresh }
            for (day, dayEvents) in Self.days(fresh) {
                guard let partition = try partition(tenant, day: day, create: true) else { continue }
                rows.append(Self.rows(dayEvents, order: Self.timeOrder(dayEvents), for: partition))
            }
        }
        return ClaimedBatch(claimed: claimed, rows: rows)
    }

    /// A batch's events by UTC day, in day order.
    static func days(_ events: [StoredEvent]) -> [(key: Int64, events: [StoredEvent])] {
        groups(events) { Timestamp.day(of: $0.timestamp) }
    }

    /// Events grouped by a key, in key order. A batch is nearly always one tenant's and one
    /// day's: then it is passed on as it is, not regrouped (each copy of an event retains a
    /// dozen strings, and this is the pipeline's hot path).
    static func groups<Key: Hashable & Comparable>(_ events: [StoredEvent], by key: (StoredEvent) -> Key) -> [(key: Key, events: [StoredEvent])] {
        guard let first = events.first.map(key) else { return [] }
        if events.allSatisfy({ key($0) == first }) { return [(first, events)] }
        return Dictionary(grouping: events, by: key).sorted { $0.key < $1.key }.map { (key: $0.key, events: $0.value) }
    }

    /// In time order, arrival order within a millisecond: the rows of a batch go into the
    /// time-clustered table as runs rather than scattered single inserts. An ordered batch is
    /// returned as it is; otherwise an index permutation is sorted and each event copied once.
    static func timeOrder(_ events: [StoredEvent]) -> [Int] {
        // Positions, not a reordered copy: a copy of each event retains a dozen strings, and
        // the batch's array is shared with the claimed events anyway. Compared by index for
        // the same reason.
        if events.indices.dropFirst().allSatisfy({ events[$0 - 1].timestamp <= events[$0].timestamp }) { return Array(events.indices) }
        return events.indices.sorted { (events[$0].timestamp, $0) < (events[$1].timestamp, $1) }
    }

    /// Inserts the rows `claim` built, partition by partition.
    public func insert(_ batch: ClaimedBatch) async throws -> Int {
        guard let rows = batch.rows as? [PartitionRows] else {
            throw StoreError(.unavailable, "this batch was not claimed by the SQLite store")
        }
        var stored = 0
        for part in rows {
            markDirty(part.partition.pool)
            stored += try await Self.insert(part, positionsPerMillisecond: positionsPerMillisecond)
        }
        return stored
    }

    /// Records the tenant's idempotency keys and quarantined items; returns the events whose
    /// key this batch holds (new, or claimed by the very record being replayed), in order.
    /// Unique keys (`StoredEvent.keyIsUnique`) are not recorded: no other event can have one,
    /// and a replay of its record is skipped by the partition (`insert`).
    func claimKeys(_ tenant: TenantName, events: [StoredEvent], quarantined items: [QuarantineItem]) async throws -> [StoredEvent] {
        // A batch of syslog frames only: nothing to record, every event is new.
        if items.isEmpty, events.allSatisfy(\.keyIsUnique) { return events }
        let tenantDB = try tenantDatabase(tenant)
        markDirty(tenantDB)
        let filter = keyFilter(tenant, pool: tenantDB)
        return try await tenantDB.write { db in
            let claim = RawStatement(try db.cachedStatement(sql: "INSERT INTO event_key (key, day, sequence) VALUES (?, ?, ?) ON CONFLICT (key) DO NOTHING"))
            let claimant = RawStatement(try db.cachedStatement(sql: "SELECT sequence FROM event_key WHERE key = ?"))
            // The positions of the events this batch holds; when that is all of them (the
            // usual case) the batch itself is returned, without copying an event.
            var fresh: [Int] = []
            fresh.reserveCapacity(events.count)
            // In key order (ties in batch order): keys of recent events start with their second
            // (`EventKey(second:digest:)`), so they go in at the end of the table as appends,
            // which leave full pages, and a key twice in the batch is next to its first copy.
            // By index, reading only the fields used: a copy of each event would retain a dozen strings.
            let order = events.indices.sorted { (events[$0].key, $0) < (events[$1].key, $1) }
            var previous: EventKey?
            for index in order {
                if events[index].keyIsUnique {
                    fresh.append(index)
                    continue
                }
                let key = events[index].key, token = events[index].sequence?.token
                guard key != previous else { continue }
                previous = key
                claim.bind(1, key)
                claim.bind(2, Timestamp.day(of: events[index].timestamp))
                claim.bind(3, token)
                try claim.run(db)
                if db.changesCount > 0 {
                    fresh.append(index)
                } else if let token {
                    claimant.bind(1, key)
                    if try claimant.int64(db) == token { fresh.append(index) }
                }
            }
            let quarantineStatement = try db.cachedStatement(
                sql: "INSERT OR IGNORE INTO quarantine (received, reason, detail, source, raw, sequence) VALUES (?, ?, ?, ?, ?, ?)")
            for item in items {
                try quarantineStatement.execute(arguments: [item.received, item.reason.rawValue, item.detail, item.source, Data(item.raw), item.sequence?.token])
            }
            // Before the commit: the filter may know a key early (a rollback leaves a false
            // positive), never late.
            filter.insert(fresh.lazy.filter { !events[$0].keyIsUnique }.map { events[$0].key })
            if fresh.count == events.count { return events }
            fresh.sort()
            return fresh.map { events[$0] }
        }
    }

    /// Events a partition collects before training its dictionary, and how many times it tries.
    static let dictionarySamples = 2_000
    static let dictionaryAttempts = 3

    /// A day partition's new events, ready for its transaction: bodies compressed with the
    /// partition's dictionary, the ids of their low-cardinality values.
    struct PartitionRows: Sendable {
        var partition: Partition
        var events: [StoredEvent]
        /// The positions in `events` of the rows, in the order they are written (`timeOrder`).
        var order: [Int]
        /// In `order`: the row's compressed body.
        var bodies: [[UInt8]]
        /// In `order`: what the row holds in the token index (`indexedText`).
        var texts: [String?]
        var terms: [String: Int64]
        var dictionary: ZstdDictionary?
    }

    /// Builds the rows of a day's new events. Bodies are built and compressed here, before
    /// the write transaction: the writer holds the database for the SQLite work only.
    static func rows(_ events: [StoredEvent], order: [Int], for partition: Partition) -> PartitionRows {
        // Fields read by index: an event passed or iterated as a whole is a copy.
        let bodies = order.map { EventBody.encode(message: events[$0].message, document: events[$0].document) }
        var values = Set<String>()
        // Each column's value in the event before: the same again (a pack's literal, the
        // sender's host) is not hashed into the set again.
        var previous = (dataset: String?.none, host: String?.none, transport: String?.none,
                        action: String?.none, outcome: String?.none, vendor: String?.none)
        func add(_ value: String?, _ last: inout String?) {
            guard let value, value != last else { return }
            values.insert(value)
            last = value
        }
        for index in events.indices {
            // One by one, by index: an array literal here would be an allocation per event, and
            // a copy of the event or its columns a retain of every string they hold.
            add(events[index].columns.dataset, &previous.dataset)
            add(events[index].columns.hostName, &previous.host)
            add(events[index].columns.networkTransport, &previous.transport)
            add(events[index].columns.eventAction, &previous.action)
            add(events[index].columns.eventOutcome, &previous.outcome)
            add(events[index].columns.observerVendor, &previous.vendor)
        }
        // Under the partition's writer lock, so concurrent writers agree on one dictionary
        // and one id per value. Readers learn both before any row using them is visible.
        let (dictionary, terms): (ZstdDictionary?, [String: Int64]) = partition.writer.withLock { state in
            var dictionary = partition.codec.newest
            if dictionary == nil, state.trainingAttempts < dictionaryAttempts {
                state.samples.append(contentsOf: bodies.prefix(dictionarySamples - state.samples.count))
                if state.samples.count >= dictionarySamples {
                    dictionary = ZstdDictionary.train(id: 1, samples: state.samples)
                    state.samples = []
                    state.trainingAttempts += 1
                    if let dictionary { partition.codec.add(dictionary) }
                }
            }
            return (dictionary, partition.terms.intern(Array(values)))
        }
        let compressed = bodies.map { BodyCodec.compress($0, dictionary: dictionary) }
        let texts = order.map { indexedText(message: events[$0].message, sourceIP: events[$0].columns.sourceIP, destinationIP: events[$0].columns.destinationIP) }
        return PartitionRows(partition: partition, events: events, order: order, bodies: compressed, texts: texts, terms: terms, dictionary: dictionary)
    }

    /// An event's row in the token index: its message's tokens and one token per address
    /// (`SQLiteDialect.tokenColumns`); nil when it has neither.
    static func indexedText(message: String?, sourceIP: String?, destinationIP: String?) -> String? {
        guard sourceIP != nil || destinationIP != nil else { return message }
        // Grown once to its final size: `text + " " + token` copied the message twice per address.
        var text = message ?? ""
        var empty = message == nil
        text.reserveCapacity(text.utf8.count + 2 + 2 * SQLiteDialect.sourceAddressMarker.utf8.count
                             + 2 * ((sourceIP?.utf8.count ?? 0) + (destinationIP?.utf8.count ?? 0)))
        // One by one: an array literal of the pairs would be an allocation per event.
        func add(_ marker: String, _ value: String?) {
            guard let value else { return }
            if !empty { text.append(" ") }
            text.append(SQLiteDialect.fieldToken(marker, value))
            empty = false
        }
        add(SQLiteDialect.sourceAddressMarker, sourceIP)
        add(SQLiteDialect.destinationAddressMarker, destinationIP)
        return text
    }

    /// Inserts a day's new events into its partition: compressed bodies, token index, rollups.
    static func insert(_ rows: PartitionRows, positionsPerMillisecond: Int64) async throws -> Int {
        // `write` spelled out (a transaction inside `writeWithoutTransaction`) so that the
        // writer's CPU below includes the commit, which writes the pages to the log.
        return try await rows.partition.pool.writeWithoutTransaction { db in
            // The writer's own CPU for the transaction (the closure runs on one thread): its
            // share of a core says how close a partition is to what one writer can take.
            let cpu = CPUClock.thread()
            defer { FloatingPointCounter(label: "vigil_store_writer_cpu_seconds_total").increment(by: CPUClock.thread() - cpu) }
            var stored = 0
            try db.inTransaction {
                // Every batch records the dictionary and the terms it uses (a no-op when they
                // are there): a batch that commits never depends on one that may have rolled back.
                if let dictionary = rows.dictionary {
                    try db.execute(sql: "INSERT OR IGNORE INTO zdict (id, dict) VALUES (?, ?)", arguments: [dictionary.id, Data(dictionary.bytes)])
                }
                let addTerm = RawStatement(try db.cachedStatement(sql: "INSERT OR IGNORE INTO term (id, value) VALUES (?, ?)"))
                for (value, id) in rows.terms {
                    addTerm.bind(1, id)
                    addTerm.bind(2, value)
                    try addTerm.run(db)
                }
                stored = try insert(rows.events, order: rows.order, bodies: rows.bodies, texts: rows.texts, terms: rows.terms,
                                    positionsPerMillisecond: positionsPerMillisecond, into: db)
                return .commit
            }
            return stored
        }
    }

    /// The SQLite part of `insert`: this is the hot path of the pipeline.
    ///
    /// A row id is the event's millisecond in the day and its position in that millisecond
    /// (`positionBits`). A tenant's events past `positionsPerMillisecond` in one millisecond
    /// (a million and more of lines stamped to the second, or dated to the day, imported at
    /// once) go to the next millisecond with room, and read back with that timestamp: a
    /// millisecond later per 1,048,576 of them. Refusing them instead would fail the batch
    /// on every retry and hold up the pipeline behind it.
    static func insert(_ events: [StoredEvent], order: [Int], bodies: [[UInt8]], texts: [String?], terms: [String: Int64],
                       positionsPerMillisecond: Int64, into db: Database) throws -> Int {
        /// A low-cardinality column: its term id, or its text past the term table's capacity.
        func bindTerm(_ statement: RawStatement, _ index: Int32, _ value: String?) {
            if let value, let id = terms[value] { statement.bind(index, id) } else { statement.bind(index, value) }
        }
        let insertEvent = RawStatement(try db.cachedStatement(sql: """
            INSERT OR IGNORE INTO event (id, ingested, key, dataset, host_name, source_ip, source_port,
                destination_ip, destination_port, network_transport, user_name, event_action, event_outcome,
                observer_vendor, body)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """))
        let insertText = RawStatement(try db.cachedStatement(sql: "INSERT INTO event_fts (rowid, message) VALUES (?, ?)"))
        let lastInMillisecond = RawStatement(try db.cachedStatement(sql: "SELECT max(id) FROM event WHERE id >= ? AND id < ?"))
        let addRollup = RawStatement(try db.cachedStatement(sql: """
            INSERT INTO rollup (minute, dataset, host_name, events) VALUES (?, ?, ?, ?)
            ON CONFLICT (minute, dataset, host_name) DO UPDATE SET events = events + excluded.events
            """))
        // Records at or below the partition's last committed sequence are a replay of rows it has.
        let committed = try Row.fetchOne(db, sql: "SELECT generation, position FROM partition_state WHERE id = 1").map {
            IntakeSequence(generation: $0[0], position: $0[1])
        }
        var newest: IntakeSequence?
        var rollup: [RollupKey: Int64] = [:]
        // The next free row id of each millisecond this batch touches.
        var next: [Int64: Int64] = [:]
        /// `id`, or the next millisecond's first id when `id` is past its millisecond's room.
        func room(at id: Int64) throws -> Int64 {
            guard id & ((1 << positionBits) - 1) >= positionsPerMillisecond else { return id }
            let spilled = (id >> positionBits + 1) << positionBits
            guard spilled < Timestamp.millisPerDay << positionBits else {
                throw StoreError(.unavailable, "the day partition has no row id left after \(id)")
            }
            return spilled
        }
        var stored = 0
        // By index, reading fields in place: a copy of each event would retain a dozen strings.
        for (row, index) in order.enumerated() {
            if let sequence = events[index].sequence {
                newest = max(newest ?? sequence, sequence)
                if let committed, sequence <= committed { continue }
            }
            let base = position(of: events[index].timestamp)
            insertEvent.bind(2, events[index].ingested)
            insertEvent.bind(3, events[index].key)
            bindTerm(insertEvent, 4, events[index].columns.dataset)
            bindTerm(insertEvent, 5, events[index].columns.hostName)
            insertEvent.bind(6, events[index].columns.sourceIP)
            insertEvent.bind(7, events[index].columns.sourcePort)
            insertEvent.bind(8, events[index].columns.destinationIP)
            insertEvent.bind(9, events[index].columns.destinationPort)
            bindTerm(insertEvent, 10, events[index].columns.networkTransport)
            insertEvent.bind(11, events[index].columns.userName)
            bindTerm(insertEvent, 12, events[index].columns.eventAction)
            bindTerm(insertEvent, 13, events[index].columns.eventOutcome)
            bindTerm(insertEvent, 14, events[index].columns.observerVendor)
            insertEvent.bindBlob(15, bodies[row])
            // The first event of a millisecond tries the millisecond's first id; only when
            // that is taken (an earlier batch wrote the same millisecond, or events spilled
            // into it) is the last id looked up. A full millisecond spills into the next.
            var id = try room(at: next[base] ?? base)
            insertEvent.bind(1, id)
            try insertEvent.runKeepingBindings(db)
            while db.changesCount == 0 {
                let millisecond = (id >> positionBits) << positionBits
                lastInMillisecond.bind(1, millisecond)
                lastInMillisecond.bind(2, millisecond + (1 << positionBits))
                guard let last = try lastInMillisecond.int64(db), last >= id else {
                    throw StoreError(.unavailable, "row id \(id) is taken")
                }
                id = try room(at: last + 1)
                insertEvent.bind(1, id)
                try insertEvent.runKeepingBindings(db)
            }
            sqlite3_clear_bindings(insertEvent.handle)
            next[base] = id + 1
            stored += 1
            rollup[RollupKey(minute: (id >> positionBits) / 60_000, dataset: events[index].columns.dataset, hostName: events[index].columns.hostName), default: 0] += 1
            if let text = texts[row] {
                insertText.bind(1, id)
                insertText.bind(2, text)
                try insertText.run(db)
            }
        }
        for (key, count) in rollup {
            addRollup.bind(1, key.minute)
            if let dataset = key.dataset { addRollup.bind(2, dataset) } else { addRollup.bindEmptyBlob(2) }
            if let host = key.hostName { addRollup.bind(3, host) } else { addRollup.bindEmptyBlob(3) }
            addRollup.bind(4, count)
            try addRollup.run(db)
        }
        if let newest, committed.map({ $0 < newest }) ?? true {
            try db.execute(sql: """
                INSERT INTO partition_state (id, generation, position) VALUES (1, ?, ?)
                ON CONFLICT (id) DO UPDATE SET generation = excluded.generation, position = excluded.position
                """, arguments: [newest.generation, newest.position])
        }
        return stored
    }

    struct RollupKey: Hashable {
        var minute: Int64
        var dataset: String?
        var hostName: String?
    }

    public func existingKeys(tenant: TenantName, keys: [EventKey]) async throws -> Set<EventKey> {
        guard !keys.isEmpty else { return [] }
        let pool = try tenantDatabase(tenant)
        // Only keys the filter cannot prove new are looked up: retries, replays, rare false positives.
        let candidates = keyFilter(tenant, pool: pool).possiblyStored(keys)
        guard !candidates.isEmpty else { return [] }
        return try await pool.read { db in
            var found = Set<EventKey>()
            // Bound directly, no argument boxing.
            let statement = RawStatement(try db.cachedStatement(sql: "SELECT 1 FROM event_key WHERE key = ?"))
            for key in candidates {
                statement.bind(1, key)
                if try statement.hasRow(db) { found.insert(key) }
            }
            return found
        }
    }

    // MARK: - Reading

    /// The columns a read selects to rebuild events with `event(from:tenant:)`.
    static let eventColumnCount = 17
    static let eventColumns = """
        event.id, event.ts, event.ingested, event.key, vigil_term(event.dataset) AS dataset, vigil_term(event.host_name) AS host_name,
        event.source_ip, event.source_port, event.destination_ip, event.destination_port,
        vigil_term(event.network_transport) AS network_transport, event.user_name, vigil_term(event.event_action) AS event_action,
        vigil_term(event.event_outcome) AS event_outcome, vigil_term(event.observer_vendor) AS observer_vendor,
        vigil_message(event.body) AS message, vigil_doc(event.body) AS doc
        """

    static func event(from row: Row, tenant: TenantName) -> Event? {
        let keyData: Data = row["key"]
        guard keyData.count == 16, let docText: String = row["doc"] else { return nil }
        var c = IndexedColumns()
        c.dataset = row["dataset"]
        c.hostName = row["host_name"]
        c.sourceIP = row["source_ip"]
        c.sourcePort = row["source_port"]
        c.destinationIP = row["destination_ip"]
        c.destinationPort = row["destination_port"]
        c.networkTransport = row["network_transport"]
        c.userName = row["user_name"]
        c.eventAction = row["event_action"]
        c.eventOutcome = row["event_outcome"]
        c.observerVendor = row["observer_vendor"]
        let stored = StoredEvent(tenant: tenant, key: EventKey(bytes: Array(keyData)), timestamp: row["ts"], ingested: row["ingested"],
                                 columns: c, message: row["message"], document: Array(docText.utf8))
        return stored.event()
    }

    public func quarantine(tenant: TenantName, reason: QuarantineReason?, from: EpochMillis, to: EpochMillis, limit: Int) async throws -> [QuarantineItem] {
        var sql = "SELECT id, received, reason, detail, source, raw FROM quarantine WHERE received >= ? AND received < ?"
        var arguments: [(any DatabaseValueConvertible)?] = [from, to]
        if let reason {
            sql += " AND reason = ?"
            arguments.append(reason.rawValue)
        }
        sql += " ORDER BY received DESC, id DESC LIMIT \(max(0, limit))"
        return try await quarantineRows(tenant, sql: sql, arguments: StatementArguments(arguments))
    }

    public func quarantine(tenant: TenantName, ids: [Int64]) async throws -> [QuarantineItem] {
        guard !ids.isEmpty else { return [] }
        let placeholders = Array(repeating: "?", count: ids.count).joined(separator: ",")
        return try await quarantineRows(tenant, sql: "SELECT id, received, reason, detail, source, raw FROM quarantine WHERE id IN (\(placeholders)) ORDER BY id",
                                        arguments: StatementArguments(ids))
    }

    func quarantineRows(_ tenant: TenantName, sql: String, arguments: StatementArguments) async throws -> [QuarantineItem] {
        let pool = try tenantDatabase(tenant)
        return try await pool.read { db in
            try Row.fetchAll(db, sql: sql, arguments: arguments).compactMap { row in
                guard let reason = QuarantineReason(rawValue: row["reason"]) else { return nil }
                let raw: Data = row["raw"]
                return QuarantineItem(id: row["id"], tenant: tenant, reason: reason, detail: row["detail"], source: row["source"],
                                      received: row["received"], raw: Array(raw))
            }
        }
    }

    public func removeQuarantined(tenant: TenantName, ids: [Int64]) async throws {
        guard !ids.isEmpty else { return }
        let pool = try tenantDatabase(tenant)
        try await pool.write { db in
            for id in ids { try db.execute(sql: "DELETE FROM quarantine WHERE id = ?", arguments: [id]) }
        }
    }

    // MARK: - Retention

    public func dropPartitions(tenant: TenantName, before day: Int64) async throws -> [Int64] {
        let expired = existingDays(tenant).filter { $0 < day }
        for expiredDay in expired {
            // Forget the cached pool first so nothing writes to the file being unlinked.
            var partition = partitions.withLock { cache in
                cache.lastUse["\(tenant.rawValue)/\(expiredDay)"] = nil
                return cache.open.removeValue(forKey: "\(tenant.rawValue)/\(expiredDay)")
            }
            if let open = partition { _ = dirty.withLock { $0.removeValue(forKey: open.pool.path) } }
            // Out of the cache, no one new can take it. A search still reading it keeps its
            // connections (and the unlinked file) until it is done, and the pool closes then:
            // closing a pool under a reader crashes SQLite (seen with idle partitions).
            if partition != nil, isKnownUniquelyReferenced(&partition!) { try partition?.pool.close() }
            partition = nil
            let path = partitionURL(tenant, day: expiredDay).path
            for suffix in ["-wal", "-shm", ""] { unlink(path + suffix) }
        }
        if !expired.isEmpty {
            let tenantDB = try tenantDatabase(tenant)
            try await tenantDB.write { db in try db.execute(sql: "DELETE FROM event_key WHERE day < ?", arguments: [day]) }
        }
        return expired
    }

    public func purgeQuarantine(tenant: TenantName, receivedBefore time: EpochMillis) async throws -> Int {
        let pool = try tenantDatabase(tenant)
        return try await pool.write { db in
            try db.execute(sql: "DELETE FROM quarantine WHERE received < ?", arguments: [time])
            return db.changesCount
        }
    }

    /// Checkpoints every database written since the last idle moment and truncates its
    /// write-ahead log, so a store at rest holds its data once.
    public func writerIdle() async {
        let written = dirty.withLock { dirty -> [DatabasePool] in
            defer { dirty.removeAll() }
            return Array(dirty.values)
        }
        for pool in written {
            do {
                _ = try await pool.writeWithoutTransaction { db in try db.checkpoint(.truncate) }
            } catch {
                logger.debug("Idle checkpoint skipped", metadata: ["path": "\(pool.path)", "error": "\(error)"])
            }
        }
    }

    public func storedTenants() throws -> [TenantName] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.compactMap(TenantName.init).sorted()
    }
}
