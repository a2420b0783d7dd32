import Foundation
import GRDB
import GRDBSQLite
import VigilCore
import VigilQuery
import VigilStorage

/// Search execution over the day partitions of one tenant: the tenant decides which files are
/// opened, the time range which of them and which rows, and the dialect turns the filter into
/// a predicate with bound values.
extension SQLiteEventStore {
    public func search(_ request: SearchRequest) async throws -> SearchResult {
        let dialect = SQLiteDialect()
        let filter = try dialect.filter(request.query.filter)
        let days = searchDays(request.tenant, from: request.from, to: request.to)
        if let aggregation = request.query.aggregation {
            return .table(try await aggregate(request, aggregation: aggregation, filter: filter, days: days))
        }
        return .events(try await events(request, filter: filter, days: days))
    }

    /// Days with a partition inside `[from, to)`, newest first.
    func searchDays(_ tenant: TenantName, from: EpochMillis, to: EpochMillis) -> [Int64] {
        guard to > from else { return [] }
        let firstDay = Timestamp.day(of: from)
        let lastDay = Timestamp.day(of: to - 1)
        return existingDays(tenant).filter { $0 >= firstDay && $0 <= lastDay }.reversed()
    }

    /// Runs `body` on a reader of the partition with the budget enforced by SQLite's progress
    /// handler: a query past its deadline, or whose client left, is interrupted mid-statement.
    func read<T: Sendable>(_ tenant: TenantName, day: Int64, budget: QueryBudget, _ body: @escaping @Sendable (Database) throws -> T) async throws -> T? {
        try budget.check()
        guard let partition = try partition(tenant, day: day, create: false) else { return nil }
        // Held, not only its pool, so the cache does not drop it while it is read.
        defer { withExtendedLifetime(partition) {} }
        let pool = partition.pool
        do {
            return try await pool.read { db in
                let context = Unmanaged.passUnretained(budget).toOpaque()
                sqlite3_progress_handler(db.sqliteConnection, 1000, { context in
                    guard let context else { return 0 }
                    return Unmanaged<QueryBudget>.fromOpaque(context).takeUnretainedValue().progress() ? 1 : 0
                }, context)
                defer { sqlite3_progress_handler(db.sqliteConnection, 0, nil, nil) }
                return try withExtendedLifetime(budget) { try body(db) }
            }
        } catch let error as DatabaseError where error.resultCode == .SQLITE_INTERRUPT {
            try budget.check()
            throw StoreError(.interrupted, budget.isExhausted ? "the count used up its work budget" : "the search was interrupted")
        } catch is CancellationError {
            throw StoreError(.cancelled, "the search was cancelled")
        }
    }

    // MARK: - Events

    /// How the rows of one partition are found: a rowid range walked newest first, checking
    /// the filter on each row; or, when the filter requires free text, the token index's own
    /// doclist walked newest first (its rowids are the event ids), joined to the rows.
    struct EventScan {
        var from: String
        var idColumn: String
        var predicate: SQLFragment

        static func make(_ filter: QueryNode, dialect: SQLiteDialect) throws -> EventScan {
            // The parts of a top-level AND made only of free text go to the token index as one
            // expression (a NOT of text only beside a positive one); the rest is checked per row.
            // Text the index answers only as a superset (several-token matches) is checked
            // again on each row's message.
            var texts: [String] = [], negatives: [String] = []
            var exact: [SQLFragment] = []
            var rest: [QueryNode] = []
            let children: [QueryNode]
            if case .and(let nodes) = filter { children = nodes } else { children = [filter] }
            for child in children {
                if case .not(let inner) = child, let expression = try SQLiteDialect.ftsExpression(inner) {
                    if SQLiteDialect.isExact(inner) {
                        negatives.append(expression)
                    } else {
                        exact.append(SQLFragment("NOT (") + (try SQLiteDialect.exactText(inner)) + SQLFragment(")"))
                    }
                } else if let expression = try SQLiteDialect.ftsExpression(child) {
                    texts.append(expression)
                    if !SQLiteDialect.isExact(child) { exact.append(try SQLiteDialect.exactText(child)) }
                } else if let match = SQLiteDialect.fieldTokenMatch(child) {
                    // An address equality walks its token's doclist too; the column is checked per row.
                    texts.append(match.expression)
                    exact.append(match.check)
                } else {
                    rest.append(child)
                }
            }
            guard !texts.isEmpty else {
                return EventScan(from: "event", idColumn: "event.id", predicate: try dialect.filter(filter))
            }
            let expression = "(" + texts.joined(separator: " AND ") + ")" + negatives.map { " NOT " + $0 }.joined()
            var predicate = SQLFragment("event_fts MATCH ?", [.text(expression)])
            for check in exact { predicate = predicate + SQLFragment(" AND (") + check + SQLFragment(")") }
            if !rest.isEmpty { predicate = predicate + SQLFragment(" AND (") + (try dialect.filter(rest.count == 1 ? rest[0] : .and(rest))) + SQLFragment(")") }
            // CROSS JOIN keeps the token index as the outer loop: SQLite never reorders it.
            return EventScan(from: "event_fts CROSS JOIN event ON event.id = event_fts.rowid", idColumn: "event_fts.rowid", predicate: predicate)
        }

        /// The WHERE clause for a partition: its id range, the cursor, the filter.
        func clause(day: Int64, from: EpochMillis, to: EpochMillis, before cursor: SearchCursor?) -> SQLFragment {
            let range = SQLiteEventStore.positions(day: day, from: from, to: to)
            var clause = SQLFragment("\(idColumn) >= ? AND \(idColumn) < ?", [.int(range.lower), .int(range.upper)])
            if let cursor, Timestamp.day(of: cursor.timestamp) == day {
                clause = clause + SQLFragment(" AND \(idColumn) < ?", [.int(cursor.position)])
            }
            return clause + SQLFragment(" AND (") + predicate + SQLFragment(")")
        }
    }

    /// How long counting `total` may take beyond the page.
    /// Work allowed for counting `total`, in progress-handler calls of 1,000 VM steps: about
    /// 60 ms on the 2-core development VM, the same cut on any machine load.
    static let countProgressCalls = 4_000

    func events(_ request: SearchRequest, filter _: SQLFragment, days: [Int64]) async throws -> EventPage {
        var sortKeys: [SortKey] = []
        var head: Int?
        for stage in request.query.stages {
            switch stage {
            case .sort(let keys): sortKeys = keys
            case .head(let count): head = min(head ?? count, count)
            case .stats, .fields: break
            }
        }
        if request.cursor != nil, !sortKeys.isEmpty || head != nil {
            throw QueryRefusal(message: "a cursor continues newest-first results; a query with | sort or | head has a single page")
        }
        let limit = min(request.limit, head ?? Int.max)
        let paged = sortKeys.isEmpty && head == nil
        let dialect = SQLiteDialect()
        let scan = try EventScan.make(request.query.filter, dialect: dialect)
        var sortColumns: [SQLFragment] = []
        for (i, key) in sortKeys.enumerated() { sortColumns.append(try dialect.value(of: key.field) + SQLFragment(" AS s\(i)")) }
        let order = (sortKeys.enumerated().map { "s\($0.offset)\($0.element.descending ? " DESC" : "")" } + ["\(scan.idColumn) DESC"]).joined(separator: ", ")
        let select = SQLFragment.join([SQLFragment(Self.eventColumns)] + sortColumns, separator: ", ", wrap: false)
        let sortCount = sortKeys.count

        struct Candidate: Sendable {
            var hit: SearchHit
            var sortValues: [DatabaseValue]
        }
        var candidates: [Candidate] = []
        let tenant = request.tenant
        for day in days where request.cursor.map({ day <= Timestamp.day(of: $0.timestamp) }) ?? true {
            // Newest first without a sort: once a page and one more are found, older days are not read.
            let want = paged ? limit + 1 - candidates.count : limit
            guard want > 0 else { break }
            let clause = scan.clause(day: day, from: request.from, to: request.to, before: request.cursor)
            let rows = try await read(tenant, day: day, budget: request.budget) { db -> [Candidate] in
                let sql = "SELECT \(select.sql) FROM \(scan.from) WHERE \(clause.sql) ORDER BY \(order) LIMIT \(want)"
                return try Row.fetchAll(db, sql: sql, arguments: Self.arguments(select.arguments + clause.arguments)).compactMap { row in
                    guard let event = Self.event(from: row, tenant: tenant) else { return nil }
                    return Candidate(hit: SearchHit(event: event, position: row["id"]), sortValues: (0..<sortCount).map { row[Self.eventColumnCount + $0] })
                }
            } ?? []
            candidates += rows
        }
        // `total` counts up to max_total_count, and for at most `countProgressCalls` of work: a
        // count that would take longer (a filter that matches sparsely along the scan) stops
        // there and answers a lower bound, so the first page never waits for it.
        var total = 0
        var complete = true
        let countCap = request.limits.maxTotalCount + 1
        let countBudget = QueryBudget(within: request.budget, progressCalls: Self.countProgressCalls)
        // A newest-first page that found no more than `limit` events found them all.
        let found = paged && candidates.count <= limit && request.cursor == nil
        if found { total = candidates.count }
        for day in days where !found {
            guard total < countCap, complete else { break }
            let cap = countCap - total
            let clause = scan.clause(day: day, from: request.from, to: request.to, before: nil)
            let counted: (Int, Bool)
            do {
                counted = try await count(tenant, day: day, budget: countBudget, sql: "SELECT 1 FROM \(scan.from) WHERE \(clause.sql) LIMIT \(cap)", arguments: clause.arguments)
            } catch let error as StoreError where error.code == .interrupted {
                try request.budget.check()
                counted = (0, false)
            }
            total += counted.0
            complete = counted.1
        }
        try request.budget.check()
        if !complete { total = max(total, candidates.count) }
        if !sortKeys.isEmpty {
            candidates.sort { a, b in
                for (i, key) in sortKeys.enumerated() {
                    let order = Self.compare(a.sortValues[i], b.sortValues[i])
                    if order != 0 { return key.descending ? order > 0 : order < 0 }
                }
                if a.hit.event.timestamp != b.hit.event.timestamp { return a.hit.event.timestamp > b.hit.event.timestamp }
                return a.hit.position > b.hit.position
            }
        }
        var hits = candidates.prefix(limit).map(\.hit)
        var next: SearchCursor?
        if paged, candidates.count > limit, let last = hits.last {
            next = SearchCursor(timestamp: last.event.timestamp, position: last.position)
        }
        if request.highlight {
            hits = try await highlight(hits, tenant: tenant, query: request.query.filter, budget: request.budget)
        }
        let exact = complete && total <= request.limits.maxTotalCount
        return EventPage(hits: hits, total: min(total, request.limits.maxTotalCount), totalIsExact: exact, nextCursor: next)
    }

    /// Counts the rows of `sql` until the budget ends: (rows, whether the count finished).
    func count(_ tenant: TenantName, day: Int64, budget: QueryBudget, sql: String, arguments: [SQLValue]) async throws -> (Int, Bool) {
        try await read(tenant, day: day, budget: budget) { db -> (Int, Bool) in
            var count = 0
            do {
                let cursor = try Row.fetchCursor(db, sql: sql, arguments: Self.arguments(arguments))
                while try cursor.next() != nil { count += 1 }
                return (count, true)
            } catch let error as DatabaseError where error.resultCode == .SQLITE_INTERRUPT {
                return (count, false)
            }
        } ?? (0, true)
    }

    /// Marks the free-text matches of `message` the way the search matched them (tokens,
    /// case and diacritics folded, phrases as one span, prefixes).
    func highlight(_ hits: [SearchHit], tenant _: TenantName, query: QueryNode, budget _: QueryBudget) async throws -> [SearchHit] {
        let positive = query.positiveText
        guard !positive.isEmpty else { return hits }
        var out = hits
        for index in out.indices {
            guard case .string(let message)? = out[index].event.fields["message"],
                  let marked = FullTextTokens.marked(message, matches: positive),
                  let highlight = Highlight(marked: marked)
            else { continue }
            out[index].highlights["message"] = highlight
        }
        return out
    }

    // MARK: - Aggregations

    func aggregate(_ request: SearchRequest, aggregation: Aggregation, filter: SQLFragment, days: [Int64]) async throws -> AggregateTable {
        let dialect = SQLiteDialect()
        // Time buckets come from the row id (ms of day << 20), never from the row itself, so a
        // timechart can be answered from an index (every index holds the row id). Whole-minute
        // spans group by the minute of day, the rollup's key, and fold minutes into buckets here.
        let byMinute = aggregation.span.map { $0 % 60_000 == 0 } ?? false
        func timeColumn(dayStart: EpochMillis) -> [SQLFragment] {
            guard let span = aggregation.span else { return [] }
            if byMinute { return [SQLFragment(Self.minuteOfDay)] }
            let ts = "(? + (event.id >> \(Self.positionBits)))"
            return [SQLFragment("\(ts) - (((\(ts) % ?) + ?) % ?)", [.int(dayStart), .int(dayStart), .int(span), .int(span), .int(span)])]
        }
        var columns: [SQLFragment] = []
        // Events without a value for a `by` field are in no group (as in Splunk and Elastic's
        // terms aggregation); this also lets SQLite read the field's partial index.
        var present: [SQLFragment] = []
        for field in aggregation.groupBy {
            let value = try dialect.value(of: field)
            columns.append(value)
            present.append(value + SQLFragment(" IS NOT NULL AND "))
        }
        let groupCount = columns.count + (aggregation.span == nil ? 0 : 1)
        for function in aggregation.functions {
            guard let field = function.field else {
                columns.append(SQLFragment("count(*)"))
                continue
            }
            let value = try dialect.value(of: field)
            let numeric = SQLFragment("CASE WHEN typeof(") + value + SQLFragment(") IN ('integer', 'real') THEN ") + value + SQLFragment(" END")
            switch function {
            case .distinctCount:
                columns.append(SQLFragment("json_group_array(DISTINCT ") + value + SQLFragment(") FILTER (WHERE ") + value + SQLFragment(" IS NOT NULL)"))
            case .sum, .avg:
                columns.append(SQLFragment("sum(") + numeric + SQLFragment(")"))
                columns.append(SQLFragment("count(") + numeric + SQLFragment(")"))
            case .min:
                columns.append(SQLFragment("min(") + numeric + SQLFragment(")"))
            case .max:
                columns.append(SQLFragment("max(") + numeric + SQLFragment(")"))
            case .count:
                break
            }
        }
        let groupClause = groupCount == 0 ? "" : " GROUP BY " + (1...groupCount).map(String.init).joined(separator: ", ")

        var state = AggregateState(functions: aggregation.functions, maxGroups: request.limits.maxGroups)
        let rollupColumns = Self.rollupColumns(for: request.query.filter, aggregation: aggregation)
        for day in days {
            let dayStart = day * Timestamp.millisPerDay
            let select = SQLFragment.join(timeColumn(dayStart: dayStart) + columns, separator: ", ", wrap: false)
            func rowsQuery(_ range: SQLFragment) -> SQLFragment {
                let whereClause = range + present.reduce(SQLFragment(""), +) + SQLFragment("(") + filter + SQLFragment(")")
                return SQLFragment("SELECT \(select.sql) FROM event WHERE \(whereClause.sql)\(groupClause)", select.arguments + whereClause.arguments)
            }
            var queries: [SQLFragment] = []
            let range = Self.positions(day: day, from: request.from, to: request.to)
            let minutes = (first: ((range.lower >> Self.positionBits) + 59_999) / 60_000, end: (range.upper >> Self.positionBits) / 60_000)
            if let rollupColumns, minutes.first < minutes.end {
                // Whole minutes from the rollup; the partial minutes at either end from the rows.
                let wholeLower = (minutes.first * 60_000) << Self.positionBits, wholeUpper = (minutes.end * 60_000) << Self.positionBits
                let selected = (aggregation.span == nil ? [] : ["minute"]) + rollupColumns + ["sum(events)"]
                let present = rollupColumns.map { " AND typeof(\($0)) <> 'blob'" }.joined()
                queries.append(SQLFragment("SELECT \(selected.joined(separator: ", ")) FROM rollup WHERE minute >= ? AND minute < ?\(present)\(groupClause)",
                                           [.int(minutes.first), .int(minutes.end)]))
                if range.lower < wholeLower { queries.append(rowsQuery(SQLFragment("event.id >= ? AND event.id < ? AND ", [.int(range.lower), .int(wholeLower)]))) }
                if wholeUpper < range.upper { queries.append(rowsQuery(SQLFragment("event.id >= ? AND event.id < ? AND ", [.int(wholeUpper), .int(range.upper)]))) }
            } else {
                queries.append(rowsQuery(Self.partitionRange(day: day, from: request.from, to: request.to)))
            }
            let span = aggregation.span
            let planned = queries
            state = try await read(request.tenant, day: day, budget: request.budget) { [state] db in
                var state = state
                for query in planned {
                    let cursor = try Row.fetchCursor(db, sql: query.sql, arguments: Self.arguments(query.arguments))
                    while let row = try cursor.next() {
                        var keys = (0..<groupCount).map { Self.json(row[$0]) }
                        if byMinute, let span, case .int(let minute) = keys[0] {
                            let start = dayStart + minute * 60_000
                            keys[0] = .int(start - ((start % span) + span) % span)
                        }
                        try state.add(keys: keys, values: (groupCount..<row.count).map { row[$0] })
                    }
                }
                return state
            } ?? state
        }
        var groups = state.groups
        var order = state.order
        if groupCount == 0, groups.isEmpty {
            // An aggregation without groups answers one row even when nothing matched.
            order = ["[]"]
            groups["[]"] = AggregateGroup(keys: [], functions: aggregation.functions)
        }
        var rows = order.map { groups[$0]!.row }
        let columnNames = aggregation.columns
        var sortKeys: [(Int, Bool)] = (0..<groupCount).map { ($0, false) }
        var head: Int?
        for stage in request.query.stages {
            switch stage {
            case .sort(let keys):
                sortKeys = []
                for key in keys {
                    guard let index = columnNames.firstIndex(of: key.field) else {
                        throw QueryRefusal(message: "sort by '\(key.field.prefix(64))': after stats or timechart, sort by one of \(columnNames.joined(separator: ", "))")
                    }
                    sortKeys.append((index, key.descending))
                }
            case .head(let count): head = min(head ?? count, count)
            case .stats, .fields: break
            }
        }
        rows.sort { a, b in
            for (index, descending) in sortKeys {
                let order = Self.compare(a[index], b[index])
                if order != 0 { return descending ? order > 0 : order < 0 }
            }
            return false
        }
        if let head { rows = Array(rows.prefix(head)) }
        return AggregateTable(columns: columnNames, rows: rows)
    }

    /// The rollup columns an aggregation can be answered from (empty: none needed), or nil
    /// when it needs the rows: only `count()` of every event, by nothing, `event.dataset` or
    /// `host.name`, in whole-minute time buckets.
    static func rollupColumns(for filter: QueryNode, aggregation: Aggregation) -> [String]? {
        guard filter == .all, aggregation.functions.allSatisfy({ $0 == .count }), aggregation.span.map({ $0 % 60_000 == 0 }) ?? true else { return nil }
        let known = ["event.dataset": "dataset", "host.name": "host_name"]
        var columns: [String] = []
        for field in aggregation.groupBy {
            guard let column = known[field] else { return nil }
            columns.append(column)
        }
        return columns
    }

    /// The minute of day of a row, from its id (the rollup's `minute`).
    static let minuteOfDay = "((event.id >> 20) / 60000)"

    /// The rows of `[from, to)` in the partition of `day`, as a predicate for scans that read
    /// most of it: none when the range covers the whole day; a row-id range hidden from the
    /// planner (`+event.id`) when it covers at least half, so that SQLite may scan a small
    /// covering index (e.g. `event_dataset` for `stats count() by event.dataset`) rather than
    /// the rows; a row-id range otherwise.
    static func partitionRange(day: Int64, from: EpochMillis, to: EpochMillis) -> SQLFragment {
        let range = positions(day: day, from: from, to: to)
        let whole = (lower: Int64(0), upper: Timestamp.millisPerDay << positionBits)
        if range.lower <= whole.lower, range.upper >= whole.upper { return SQLFragment("") }
        if (range.upper - range.lower) * 2 >= whole.upper {
            return SQLFragment("+event.id >= ? AND +event.id < ? AND ", [.int(range.lower), .int(range.upper)])
        }
        return SQLFragment("event.id >= ? AND event.id < ? AND ", [.int(range.lower), .int(range.upper)])
    }

    // MARK: - Tail

    /// How long after receipt an event may still be stored and reach a tail.
    static let tailLagMillis: Int64 = 5_000

    public func tail(tenant: TenantName, query: Query, cursor: TailCursor?, now: EpochMillis, limit: Int, budget: QueryBudget) async throws -> (hits: [SearchHit], cursor: TailCursor) {
        guard let cursor else { return ([], TailCursor(since: now)) }
        let filter = try SQLiteDialect().filter(query.filter)
        let today = Timestamp.day(of: now)
        let days = existingDays(tenant).filter { $0 >= today - 1 && $0 <= today + 1 }
        let after = cursor.since - Self.tailLagMillis
        let clause = SQLFragment("event.ingested >= ? AND (", [.int(after)]) + filter + SQLFragment(")")
        var hits: [SearchHit] = []
        for day in days {
            let rows = try await read(tenant, day: day, budget: budget) { db in
                try Row.fetchAll(db, sql: "SELECT \(Self.eventColumns) FROM event WHERE \(clause.sql) ORDER BY event.ingested LIMIT \(limit + cursor.sent.count)",
                                 arguments: Self.arguments(clause.arguments))
                    .compactMap { row in Self.event(from: row, tenant: tenant).map { SearchHit(event: $0, position: row["id"]) } }
            } ?? []
            hits += rows.filter { cursor.sent[$0.event.key] == nil }
        }
        hits.sort { $0.event.ingested < $1.event.ingested }
        hits = Array(hits.prefix(limit))
        var next = cursor
        for hit in hits {
            next.sent[hit.event.key] = hit.event.ingested
            next.since = max(next.since, hit.event.ingested)
        }
        // Keys older than the lag window can no longer come back: forget them.
        let horizon = next.since - Self.tailLagMillis
        next.sent = next.sent.filter { $0.value >= horizon }
        return (hits, next)
    }

    public func eventsIngested(tenant: TenantName, query: Query, from: EpochMillis, to: EpochMillis, after: (EpochMillis, EventKey)?, limit: Int) async throws -> [Event] {
        let filter = try SQLiteDialect().filter(query.filter)
        var built = SQLFragment("event.ingested >= ? AND event.ingested < ? AND (", [.int(from), .int(to)]) + filter + SQLFragment(")")
        if let (ingested, key) = after {
            built = built + SQLFragment(" AND (event.ingested > ? OR (event.ingested = ? AND event.key > ?))", [.int(ingested), .int(ingested), .blob(key.bytes)])
        }
        let clause = built
        // Late events land in old partitions: every partition is read (the ingest index makes
        // each read a range scan). Partitions are per event day, at most the retention.
        var events: [Event] = []
        let budget = QueryBudget(timeoutMillis: 60_000)
        for day in existingDays(tenant) {
            let rows = try await read(tenant, day: day, budget: budget) { db in
                try Row.fetchAll(db, sql: "SELECT \(Self.eventColumns) FROM event WHERE \(clause.sql) ORDER BY event.ingested, event.key LIMIT \(max(0, limit))",
                                 arguments: Self.arguments(clause.arguments))
                    .compactMap { Self.event(from: $0, tenant: tenant) }
            } ?? []
            events += rows
        }
        events.sort { ($0.ingested, $0.key) < ($1.ingested, $1.key) }
        return Array(events.prefix(limit))
    }

    // MARK: - Plans

    /// SQLite's plan for the event query of a search on its newest partition (tests and
    /// troubleshooting: it shows which indexes a query uses).
    public func queryPlan(_ request: SearchRequest) async throws -> [String] {
        let scan = try EventScan.make(request.query.filter, dialect: SQLiteDialect())
        guard let day = searchDays(request.tenant, from: request.from, to: request.to).first else { return [] }
        let clause = scan.clause(day: day, from: request.from, to: request.to, before: nil)
        return try await read(request.tenant, day: day, budget: request.budget) { db in
            try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN SELECT event.id FROM \(scan.from) WHERE \(clause.sql) ORDER BY \(scan.idColumn) DESC LIMIT 100",
                             arguments: Self.arguments(clause.arguments)).map { $0["detail"] as String }
        } ?? []
    }

    // MARK: - Helpers

    static func arguments(_ values: [SQLValue]) -> StatementArguments {
        StatementArguments(values.map { value -> DatabaseValue in
            switch value {
            case .null: return .null
            case .int(let int): return int.databaseValue
            case .double(let double): return double.databaseValue
            case .text(let text): return text.databaseValue
            case .blob(let bytes): return Data(bytes).databaseValue
            }
        })
    }

    static func json(_ value: DatabaseValue) -> JSONValue {
        switch value.storage {
        case .null: return .null
        case .int64(let int): return .int(int)
        case .double(let double): return .double(double)
        case .string(let text): return .string(text)
        case .blob(let data): return .string(data.base64EncodedString())
        }
    }

    /// SQLite's order across types: null, numbers, text, blobs.
    static func compare(_ a: DatabaseValue, _ b: DatabaseValue) -> Int {
        compare(json(a), json(b))
    }

    static func compare(_ a: JSONValue, _ b: JSONValue) -> Int {
        func rank(_ v: JSONValue) -> Int {
            switch v {
            case .null: return 0
            case .int, .double, .bool: return 1
            case .string: return 2
            case .array, .object: return 3
            }
        }
        func number(_ v: JSONValue) -> Double {
            switch v {
            case .int(let i): return Double(i)
            case .double(let d): return d
            case .bool(let b): return b ? 1 : 0
            default: return 0
            }
        }
        let (ra, rb) = (rank(a), rank(b))
        if ra != rb { return ra < rb ? -1 : 1 }
        switch (a, b) {
        case (.int(let x), .int(let y)): return x == y ? 0 : (x < y ? -1 : 1)
        case (.string(let x), .string(let y)): return x == y ? 0 : (x < y ? -1 : 1)
        default:
            let (x, y) = (number(a), number(b))
            return x == y ? 0 : (x < y ? -1 : 1)
        }
    }

    /// `vigil_cidr(ip, network)`: 1 when the text is an address inside the block.
    static let cidrFunction = DatabaseFunction("vigil_cidr", argumentCount: 2, pure: true) { values in
        guard let text = String.fromDatabaseValue(values[0]), let block = String.fromDatabaseValue(values[1]),
              let network = IPNetwork(block) else { return false }
        return network.contains(text: text)
    }
}

/// The groups of an aggregation as rows arrive, partition after partition, in first-seen order.
struct AggregateState: Sendable {
    var functions: [AggregateFunction]
    var maxGroups: Int
    var groups: [String: AggregateGroup] = [:]
    var order: [String] = []

    init(functions: [AggregateFunction], maxGroups: Int) {
        self.functions = functions
        self.maxGroups = maxGroups
    }

    mutating func add(keys: [JSONValue], values: [DatabaseValue]) throws {
        let key = JSONWriter.string(.array(keys))
        if groups[key] == nil {
            guard groups.count < maxGroups else {
                throw SearchLimitError(limit: "max_groups", message: "the aggregation has more than \(maxGroups) groups; narrow the query or group by fewer fields")
            }
            groups[key] = AggregateGroup(keys: keys, functions: functions)
            order.append(key)
        }
        groups[key]!.add(values)
    }
}

/// One group of an aggregation, merged across partitions.
struct AggregateGroup: Sendable {
    enum Accumulator: Sendable {
        case count(Int64)
        case distinct(Set<String>)
        case sum(Double, allIntegers: Bool, count: Int64, isAverage: Bool)
        case extreme(JSONValue, isMax: Bool)
    }

    var keys: [JSONValue]
    var accumulators: [Accumulator]

    init(keys: [JSONValue], functions: [AggregateFunction]) {
        self.keys = keys
        accumulators = functions.map { function in
            switch function {
            case .count: return .count(0)
            case .distinctCount: return .distinct([])
            case .sum: return .sum(0, allIntegers: true, count: 0, isAverage: false)
            case .avg: return .sum(0, allIntegers: true, count: 0, isAverage: true)
            case .min: return .extreme(.null, isMax: false)
            case .max: return .extreme(.null, isMax: true)
            }
        }
    }

    /// Adds one partition's values (the SQL columns after the group keys).
    mutating func add(_ values: [DatabaseValue]) {
        var column = 0
        for index in accumulators.indices {
            switch accumulators[index] {
            case .count(let count):
                accumulators[index] = .count(count + (Int64.fromDatabaseValue(values[column]) ?? 0))
                column += 1
            case .distinct(var set):
                if let text = String.fromDatabaseValue(values[column]), case .array(let items)? = try? JSONParser.parse(text) {
                    for item in items { set.insert(JSONWriter.string(item)) }
                }
                accumulators[index] = .distinct(set)
                column += 1
            case .sum(let sum, let allIntegers, let count, let isAverage):
                let value = values[column]
                let added = Double.fromDatabaseValue(value) ?? 0
                let isInteger: Bool
                if case .int64 = value.storage { isInteger = true } else { isInteger = value.isNull }
                accumulators[index] = .sum(sum + added, allIntegers: allIntegers && isInteger,
                                           count: count + (Int64.fromDatabaseValue(values[column + 1]) ?? 0), isAverage: isAverage)
                column += 2
            case .extreme(let current, let isMax):
                let value = SQLiteEventStore.json(values[column])
                if value != .null, current == .null || (SQLiteEventStore.compare(value, current) > 0) == isMax {
                    accumulators[index] = .extreme(value, isMax: isMax)
                }
                column += 1
            }
        }
    }

    var row: [JSONValue] {
        keys + accumulators.map { accumulator in
            switch accumulator {
            case .count(let count): return .int(count)
            case .distinct(let set): return .int(Int64(set.count))
            case .sum(let sum, let allIntegers, let count, let isAverage):
                if count == 0 { return .null }
                if isAverage { return .double(sum / Double(count)) }
                return allIntegers && abs(sum) < 9e15 ? .int(Int64(sum)) : .double(sum)
            case .extreme(let value, _): return value
            }
        }
    }
}
