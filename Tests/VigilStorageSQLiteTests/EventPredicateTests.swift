import Foundation
import Logging
import Testing
import VigilCore
import VigilQuery
import VigilStorage
@testable import VigilStorageSQLite

/// The in-memory predicate against SQLite itself: random events with fields of every JSON
/// type (absent, null, strings that look like numbers, reals, arrays, objects, duplicate
/// keys, non-ASCII text, addresses), stored in a real store, and random filters over them.
/// Wherever the predicate decides, it must decide as the store's `eventsIngested` does.
struct EventPredicateTests {
    let tenant = TenantName("acme")!
    static let day: EpochMillis = 1_795_478_400_000  // 2026-11-24T00:00:00Z

    static let messages: [String?] = [
        "Failed password for root from 10.1.2.3 port 22 ssh2", "Accepted password for alice", "FAILED login: error-42",
        "Connexion refusée pour Zoë", "failed", "password failed for root", "vsip31302e", nil, "", "passwd changed",
    ]
    static let values: [String: [JSONValue]] = [
        "host.name": [.string("web-1"), .string("web-2"), .int(5), .string("WEB-1")],
        "source.ip": [.string("10.1.2.3"), .string("10.1.9.9"), .string("192.168.1.5"), .string("2001:db8::7"), .string("010.1.2.3"), .int(7)],
        "source.port": [.int(22), .string("22"), .string("443"), .string("x"), .int(443)],
        "destination.ip": [.string("10.1.2.3"), .string("172.16.0.1")],
        "user.name": [.string("root"), .string("alice"), .string("Root"), .bool(true)],
        "event.outcome": [.string("failure"), .string("success")],
        "bytes": [.int(100), .int(250), .double(50.5), .string("n/a"), .string("100"), .bool(true), .null, .int(-3)],
        "tags": [.array([.string("ioc_match"), .string("vpn")]), .string("ioc_match"), .array([.int(1), .int(2)]),
                 .array([.string("a"), .object(JSONObject([("x", .int(1))]))]), .array([.null, .bool(true)])],
        "flag": [.bool(true), .bool(false), .null, .string("true"), .int(1), .int(0)],
        "process.name": [.string("cmd.exe"), .string("CMD.EXE"), .string("powershell.exe"), .string("café.exe")],
        "geo": [.object(JSONObject([("city", .string("Paris"))])), .string("Paris")],
        "source.geo.city": [.string("Paris"), .string("Lyon")],
    ]
    static let fieldNames = values.keys.sorted() + ["message", "source", "missing.field", "source..ip"]
    static let texts: [TextMatch] = [
        .term("failed"), .term("password"), .term("root"), .term("FAILED"), .term("10.1.2.3"), .term("refusée"), .term("zoe"),
        .term("error-42"), .term("for root"), .term("vsip31302e"), .phrase("failed password"), .phrase("password failed"),
        .prefix("pass"), .prefix("v"), .prefix("fail"), .prefix("password f"), .term("accepted"),
    ]
    static let wanted = ["root", "web-1", "5", "22", "443", "100", "true", "false", "ioc_match", "10.1.2.3", "1", "0", "n/a", "x",
                         "Failed password for root from 10.1.2.3 port 22 ssh2", "Paris", "cmd.exe", "{\"x\":1}", "-3", "2001:db8::7"]
    static let prefixes = ["web", "10.1.", "1", "ro", "tr", "Fail", "", "caf", "2"]
    static let bounds = ["10", "100", "200", "-5", "a", "m", "web-2", "22", "1.5"]
    static let networks = ["10.1.0.0/16", "10.0.0.0/8", "2001:db8::/32", "10.1.2.3/32", "192.168.0.0/24"].map { IPNetwork($0)! }

    static func event(_ generator: inout SplitMix64) -> JSONObject {
        var fields = JSONObject()
        if let message = messages.randomElement(using: &generator)! { fields.members.append(("message", .string(message))) }
        for name in values.keys.sorted() where Bool.random(using: &generator) {
            FieldNesting.set(values[name]!.randomElement(using: &generator)!, at: name, in: &fields)
        }
        if Int.random(in: 0..<8, using: &generator) == 0 {
            fields.members.append(("dup", .string("a")))
            fields.members.append(("dup", .string("b")))
        }
        if Int.random(in: 0..<12, using: &generator) == 0 { fields.members.append(("message", .string("second message"))) }
        return fields
    }

    static func leaf(_ generator: inout SplitMix64) -> QueryNode {
        let field = fieldNames.randomElement(using: &generator)!
        switch Int.random(in: 0..<7, using: &generator) {
        case 0: return .text(texts.randomElement(using: &generator)!)
        case 1, 2: return .field(field, .equals(wanted.randomElement(using: &generator)!))
        case 3: return .field(field, .prefix(prefixes.randomElement(using: &generator)!))
        case 4:
            let lower = Bool.random(using: &generator) ? RangeBound(bounds.randomElement(using: &generator)!, inclusive: Bool.random(using: &generator)) : nil
            let upper = lower == nil || Bool.random(using: &generator) ? RangeBound(bounds.randomElement(using: &generator)!, inclusive: Bool.random(using: &generator)) : nil
            return .field(field, .range(lower: lower, upper: upper))
        case 5: return .field(["source.ip", "destination.ip", "host.name", "bytes", "tags", "missing.field"].randomElement(using: &generator)!,
                              .cidr(networks.randomElement(using: &generator)!))
        default: return .exists(field)
        }
    }

    static func node(_ generator: inout SplitMix64, depth: Int) -> QueryNode {
        guard depth > 0 else { return leaf(&generator) }
        switch Int.random(in: 0..<6, using: &generator) {
        case 0: return .not(node(&generator, depth: depth - 1))
        case 1: return .and((0..<Int.random(in: 2...3, using: &generator)).map { _ in node(&generator, depth: depth - 1) })
        case 2: return .or((0..<Int.random(in: 2...3, using: &generator)).map { _ in node(&generator, depth: depth - 1) })
        default: return leaf(&generator)
        }
    }

    /// Every leaf the generator knows, alone and negated.
    static var leaves: [QueryNode] {
        var leaves = texts.map(QueryNode.text)
        for field in fieldNames {
            leaves += wanted.map { .field(field, .equals($0)) }
            leaves += prefixes.map { .field(field, .prefix($0)) }
            leaves += networks.map { .field(field, .cidr($0)) }
            leaves.append(.exists(field))
            for (i, low) in bounds.enumerated() {
                leaves.append(.field(field, .range(lower: RangeBound(low, inclusive: i % 2 == 0), upper: nil)))
                leaves.append(.field(field, .range(lower: nil, upper: RangeBound(low, inclusive: i % 2 == 1))))
                let high = bounds[(i + 3) % bounds.count]
                leaves.append(.field(field, .range(lower: RangeBound(low, inclusive: true), upper: RangeBound(high, inclusive: false))))
            }
        }
        return leaves.flatMap { [$0, .not($0)] }
    }

    /// Stores the events and compares the predicate with the store on every query; returns
    /// (queries run, answers decided, unsure, matched).
    func compare(events: [JSONObject], queries: [Query]) async throws -> (queries: Int, decided: Int, unsure: Int, matched: Int) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("predicate-\(UUID().uuidString)", isDirectory: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try SQLiteEventStore(dataDirectory: dir, logger: Logger(label: "test"))
        _ = try await store.write(events: events.enumerated().map { index, fields in
            let time = Self.day + Int64(index) * 1000
            return StoredEvent(Event(tenant: tenant, key: EventKey(high: 7, low: UInt64(index + 1)), timestamp: time, ingested: time + 1, fields: fields))
        }, quarantined: [])
        var decided = 0, unsure = 0, matched = 0, ran = 0
        for query in queries {
            let selected: Set<UInt64>
            do {
                selected = Set(try await store.eventsIngested(tenant: tenant, query: query, from: Self.day, to: Self.day + Timestamp.millisPerDay,
                                                              after: nil, limit: 10_000).map(\.key.low))
            } catch is QueryRefusal {
                #expect(SQLiteEventPredicate(query) == nil, "the store refuses \(query.filter)")
                continue
            }
            guard let predicate = SQLiteEventPredicate(query) else {
                Issue.record("no predicate for a query the store runs: \(query.filter)")
                continue
            }
            ran += 1
            for (index, fields) in events.enumerated() {
                let truth = predicate.evaluate(fields)
                let isSelected = selected.contains(UInt64(index + 1))
                switch truth {
                case .unsure:
                    unsure += 1
                case .yes:
                    decided += 1
                    matched += 1
                    #expect(isSelected, "\(query.filter) on \(JSONWriter.string(.object(fields)))")
                case .no, .null:
                    decided += 1
                    #expect(!isSelected, "\(query.filter) (\(truth)) on \(JSONWriter.string(.object(fields)))")
                }
                #expect(predicate.matches(fields) == (truth == .yes))
            }
        }
        return (ran, decided, unsure, matched)
    }

    @Test func everyLeafAloneAndNegatedIsDecidedAsTheStoreDoes() async throws {
        var generator = SplitMix64(seed: 20_261_205)
        let events = (0..<160).map { _ in Self.event(&generator) }
        let leaves = Self.leaves
        let result = try await compare(events: events, queries: leaves.map { Query(filter: $0) })
        // The comparison means something: most answers are decided, and many are matches.
        #expect(result.queries > leaves.count * 9 / 10)
        #expect(result.decided > 4 * result.unsure, "\(result)")
        #expect(result.matched > 20_000, "\(result)")
    }

    @Test func randomFiltersAreDecidedAsTheStoreDoes() async throws {
        var generator = SplitMix64(seed: 5_122_026)
        let events = (0..<160).map { _ in Self.event(&generator) }
        let queries = (0..<300).map { _ in Query(filter: Self.node(&generator, depth: Int.random(in: 1...3, using: &generator))) }
        let result = try await compare(events: events, queries: queries)
        #expect(result.queries > 250)
        #expect(result.decided > 4 * result.unsure, "\(result)")
        #expect(result.matched > 3_000, "\(result)")
    }

    /// What a per-event native rule looks like: decided on ordinary events, in both directions.
    @Test func ordinaryRuleQueriesAreDecided() throws {
        let parser = QueryParser()
        let failedRoot = try #require(SQLiteEventPredicate(try parser.parse("failed AND user.name:root AND NOT source.ip:10.0.0.0/8")))
        var fields = JSONObject([("message", .string("Failed password for root from 192.0.2.7"))])
        FieldNesting.set(.string("root"), at: "user.name", in: &fields)
        FieldNesting.set(.string("192.0.2.7"), at: "source.ip", in: &fields)
        #expect(failedRoot.evaluate(fields) == .yes)
        FieldNesting.set(.string("10.9.9.9"), at: "source.ip", in: &fields)
        #expect(failedRoot.evaluate(fields) == .no)
        // A missing field is NULL in SQL, and NOT NULL is not true: the event is not matched.
        let notAdmin = try #require(SQLiteEventPredicate(try parser.parse("NOT user.name:admin")))
        #expect(notAdmin.evaluate(JSONObject([("message", .string("x"))])) == .null)
        #expect(!notAdmin.matches(JSONObject([("message", .string("x"))])))
        // Several rules' queries on one event: the indexes of those it certainly matches; a
        // query the store refuses never matches.
        let store = try SQLiteEventStore(dataDirectory: FileManager.default.temporaryDirectory.appendingPathComponent("predicates-\(UUID().uuidString)"), logger: Logger(label: "test"))
        let set = try #require(store.eventPredicates(for: [try parser.parse("failed"), Query(filter: .field("bad field!", .equals("x"))),
                                                           try parser.parse("user.name:root"), try parser.parse("user.name:alice")]))
        #expect(set.matching(fields) == [0, 2])
        // Pipe stages and fields the store refuses have no predicate.
        #expect(SQLiteEventPredicate(try parser.parse("failed | stats count()")) == nil)
        #expect(SQLiteEventPredicate(Query(filter: .field("bad field!", .equals("x")))) == nil)
    }
}
