import Foundation
import GRDB
import Logging
import Testing
import VigilCore
import VigilQuery
@testable import VigilStorage
@testable import VigilStorageSQLite

/// The compact partition layout: documents without the column fields, zstd bodies with
/// trained dictionaries, replays recognised by their intake sequence, and a token index that
/// keeps no positions (phrases checked on the message).
struct CompactStorageTests {
    let acme = TenantName("acme")!
    let day: EpochMillis = 1_795_478_400_000  // 2026-11-24T00:00:00Z

    func makeStore(_ dir: URL? = nil) throws -> (SQLiteEventStore, URL) {
        let dir = dir ?? FileManager.default.temporaryDirectory.appendingPathComponent("compact-\(UUID().uuidString)", isDirectory: true)
        return (try SQLiteEventStore(dataDirectory: dir, logger: Logger(label: "test")), dir)
    }

    /// Objects with their members sorted, recursively: leaving a column field out and `restore`
    /// may move it to the end of its object, which no reader depends on.
    static func sorted(_ value: JSONValue) -> JSONValue {
        switch value {
        case .object(let object):
            return .object(JSONObject(object.members.map { ($0.key, sorted($0.value)) }.sorted { $0.0 < $1.0 }))
        case .array(let values):
            return .array(values.map(sorted))
        default:
            return value
        }
    }

    func event(_ n: UInt64, at timestamp: EpochMillis, _ fields: JSONObject, sequence: IntakeSequence? = nil) -> StoredEvent {
        var stored = StoredEvent(Event(tenant: acme, key: EventKey(high: 7, low: n), timestamp: timestamp, ingested: timestamp + 1, fields: fields))
        stored.sequence = sequence
        return stored
    }

    func count(_ store: SQLiteEventStore, _ query: String) async throws -> Int {
        let result = try await store.search(SearchRequest(tenant: acme, query: try QueryParser().parse(query), from: day, to: day + 86_400_000, limit: 10_000, budget: patientBudget()))
        guard case .events(let page) = result else { return -1 }
        return page.total
    }

    @Test func columnFieldsLeaveTheDocumentAndComeBackExactly() throws {
        let documents: [String] = [
            #"{"message":"m","host":{"name":"web-1","os":{"family":"linux"}},"source":{"ip":"10.0.0.1","port":443},"event":{"dataset":"d","outcome":"success","kind":"event"}}"#,
            // A port as a string, a number as a host name: the column cannot give them back, so they stay.
            #"{"source":{"port":"443","ip":"10.0.0.1"},"host":{"name":12},"user":{"name":"bob"}}"#,
            // Parents that held only column fields stay as empty objects.
            #"{"observer":{"vendor":"Palo Alto Networks"},"network":{"transport":"tcp"},"event":{"action":"deny"}}"#,
            // A duplicated key: left alone.
            #"{"host":{"name":"a","name":"b"}}"#,
            #"{"destination":{"ip":"::1","port":-1},"event":{}}"#,
        ]
        for text in documents {
            guard case .object(let fields) = try JSONParser.parse(text) else { Issue.record("not an object: \(text)"); continue }
            let stored = event(1, at: day, fields)
            let document = String(decoding: stored.document, as: UTF8.self)
            let back = try #require(stored.event())
            #expect(Self.sorted(.object(back.fields)) == Self.sorted(.object(fields)), "\(text) → \(document)")
            if text.contains(#""ip":"10.0.0.1","port":443"#) {
                #expect(!document.contains("web-1") && !document.contains("10.0.0.1") && document.contains("linux"), "\(document)")
            }
            if text.contains(#""port":"443""#) { #expect(document.contains(#""port":"443""#) && document.contains("12")) }
            if text.contains("Palo Alto") { #expect(document == #"{"observer":{},"network":{},"event":{}}"#) }
        }
    }

    /// Removes the columns' fields from a document: how the store did it before the writer
    /// left them out, kept here as the test's oracle.
    static func strip(_ columns: IndexedColumns, from fields: inout JSONObject) {
        for (keys, value) in zip(IndexedColumns.keyPaths, columns.values) {
            guard let value else { continue }
            remove(keys[...], value: value, from: &fields)
        }
    }

    static func remove(_ keys: ArraySlice<String>, value: JSONValue, from object: inout JSONObject) {
        guard let key = keys.first else { return }
        var found: Int?
        for (index, member) in object.members.enumerated() where member.key == key {
            guard found == nil else { return }  // a duplicate key: leave the object as it is
            found = index
        }
        guard let index = found else { return }
        if keys.count == 1 {
            if object.members[index].value == value { object.members.remove(at: index) }
        } else if case .object(var child) = object.members[index].value {
            object.members[index].value = .null
            remove(keys.dropFirst(), value: value, from: &child)
            object.members[index].value = .object(child)
        }
    }

    /// The stored document is written leaving the columns' fields out; it must be exactly what
    /// removing them first (`strip`) and writing the rest gives, on random documents with
    /// duplicate keys, scalars where objects were expected, and values that differ from the
    /// column's (`"443"` for a port).
    @Test func leavingColumnFieldsOutWhileWritingEqualsStrippingThemFirst() {
        let outer = ["event", "host", "source", "destination", "network", "user", "observer", "message", "x"]
        let inner = ["dataset", "name", "ip", "port", "transport", "action", "outcome", "vendor", "os"]
        let scalars: [JSONValue] = [.string("a"), .string("10.0.0.1"), .int(443), .string("443"), .null, .array([.string("a")])]
        var generator = SystemRandomNumberGenerator()
        func object(depth: Int) -> JSONObject {
            JSONObject((0..<Int.random(in: 0...5, using: &generator)).map { _ in
                let key = (depth == 0 ? outer : inner).randomElement(using: &generator)!
                let nested = depth < 2 && Bool.random(using: &generator)
                return (key, nested ? .object(object(depth: depth + 1)) : scalars.randomElement(using: &generator)!)
            })
        }
        for _ in 0..<5_000 {
            let fields = object(depth: 0)
            let stored = StoredEvent(tenant: acme, key: EventKey(high: 1, low: 1), timestamp: day, ingested: day, fields: fields)
            var expected = fields
            if case .string? = expected["message"] { expected.removeValue(forKey: "message") }
            Self.strip(stored.columns, from: &expected)
            #expect(stored.document == JSONWriter.bytes(.object(expected)), "\(JSONWriter.string(.object(fields)))")
        }
    }

    @Test func bodiesRoundTripWithAndWithoutADictionary() throws {
        let samples = (0..<500).map { i in
            EventBody.encode(message: "Failed password for user\(i % 7) from 10.1.\(i % 250).\(i % 13) port \(1000 + i) ssh2",
                             document: Array(#"{"process":{"name":"sshd","pid":\#(i)},"event":{"kind":"event"}}"#.utf8))
        }
        let dictionary = try #require(ZstdDictionary.train(id: 1, samples: samples))
        let codec = BodyCodec()
        codec.add(dictionary)
        var plainBytes = 0, dictionaryBytes = 0
        for body in samples.prefix(50) {
            let plain = BodyCodec.compress(body, dictionary: nil)
            let trained = BodyCodec.compress(body, dictionary: dictionary)
            plainBytes += plain.count
            dictionaryBytes += trained.count
            #expect(plain.withUnsafeBytes { codec.decompress($0) } == body)
            #expect(trained.withUnsafeBytes { codec.decompress($0) } == body)
            // A partition without that dictionary cannot read the blob, and says so with nil.
            #expect(trained.withUnsafeBytes { BodyCodec().decompress($0) } == nil)
        }
        #expect(dictionaryBytes * 2 < plainBytes, "a trained dictionary should at least halve small bodies: \(dictionaryBytes) vs \(plainBytes)")
        let body = samples[3]
        let decoded = body.withUnsafeBytes { EventBody.decode($0) }
        #expect(decoded?.message == "Failed password for user3 from 10.1.3.3 port 1003 ssh2")
        // Damaged blobs: unknown format, truncated frame, absurd size, empty.
        let good = BodyCodec.compress(body, dictionary: dictionary)
        let damagedBlobs: [[UInt8]] = [[9] + Array(good.dropFirst()), Array(good.prefix(good.count / 2)), [1, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F], []]
        for damaged in damagedBlobs {
            #expect(damaged.withUnsafeBytes { codec.decompress($0) } == nil)
        }
        // A body zstd cannot shrink is kept as it is.
        let tiny = EventBody.encode(message: "x", document: Array("{}".utf8))
        #expect(BodyCodec.compress(tiny, dictionary: nil) == [0] + tiny)
    }

    @Test func aPartitionTrainsItsDictionaryAndReadsEveryEventBackAfterReopening() async throws {
        let (store, dir) = try makeStore()
        let total = SQLiteEventStore.dictionarySamples + 500
        var written: [StoredEvent] = []
        for i in 0..<total {
            var fields = JSONObject([("message", .string("Accepted publickey for user\(i % 11) from 203.0.\(i % 200).\(i % 97) port \(2000 + i) ssh2"))])
            FieldNesting.set(.string("srv-\(i % 5)"), at: "host.name", in: &fields)
            FieldNesting.set(.string("linux.sshd"), at: "event.dataset", in: &fields)
            FieldNesting.set(.int(Int64(i)), at: "process.pid", in: &fields)
            written.append(event(UInt64(i), at: day + Int64(i) * 10, fields))
        }
        // The first batch is half the sample set; the second completes it, trains, and is
        // compressed with the dictionary like the third.
        let half = SQLiteEventStore.dictionarySamples / 2
        for batch in [written[0..<half], written[half..<(2 * half)], written[(2 * half)...]] {
            #expect(try await store.write(events: Array(batch), quarantined: []) == batch.count)
        }
        let partition = try #require(try store.partition(acme, day: Timestamp.day(of: day), create: false))
        let formats = try await partition.pool.read { db in
            try Row.fetchAll(db, sql: """
                SELECT CASE WHEN substr(body, 1, 2) = x'0101' THEN 'dictionary' ELSE 'plain' END AS kind, count(*) AS n
                FROM event GROUP BY 1 ORDER BY 1
                """).map { row -> String in "\(row["kind"] as String):\(row["n"] as Int)" }
        }
        // Zstd without a dictionary (or stored as it is) for the first batch, dictionary 1 for the others.
        #expect(formats == ["dictionary:\(total - half)", "plain:\(half)"])

        let (reopened, _) = try makeStore(dir)
        for store in [store, reopened] {
            let result = try await store.search(SearchRequest(tenant: acme, query: try QueryParser().parse("*"), from: day, to: day + 86_400_000, limit: 10_000, budget: patientBudget()))
            let back = Dictionary(uniqueKeysWithValues: result.events.map { ($0.key, $0) })
            #expect(back.count == total)
            for original in written {
                let event = try #require(back[original.key])
                #expect(Self.sorted(.object(event.fields)) == Self.sorted(.object(original.event()!.fields)))
            }
            #expect(try await count(store, #"process.pid:2100"#) == 1)
            #expect(try await count(store, #""publickey for user3""#) == total / 11 + (total % 11 > 3 ? 1 : 0))
        }
    }

    @Test func aReplayedRecordIsStoredOnceAndASecondCopyIsADuplicate() async throws {
        let (store, _) = try makeStore()
        let generation: Int64 = 1_700_000_000_000
        let batch = (0..<20).map { i in
            event(UInt64(i), at: day + Int64(i % 3) * 86_400_000 / 3, JSONObject([("message", .string("event \(i)"))]),
                  sequence: IntakeSequence(generation: generation, position: Int64(100 + i)))
        }
        // Crash after the key table committed, before any partition did: the replay stores them.
        let claimed = try await store.claimKeys(acme, events: batch, quarantined: [])
        #expect(claimed.count == 20)
        #expect(try await store.write(events: batch, quarantined: []) == 20)
        // Crash after the partitions committed, before the queue did: the replay stores nothing.
        #expect(try await store.write(events: batch, quarantined: []) == 0)
        #expect(try await count(store, "*") == 20)
        // The same events from other records (a client retry): duplicates.
        let retried = batch.map { copy -> StoredEvent in
            var copy = copy
            copy.sequence = IntakeSequence(generation: generation, position: copy.sequence!.position + 1_000)
            return copy
        }
        #expect(try await store.write(events: retried, quarantined: []) == 0)
        // Two copies in one batch: the first is kept.
        let twins = [event(500, at: day + 1, JSONObject([("message", .string("twin"))]), sequence: IntakeSequence(generation: generation, position: 5000)),
                     event(500, at: day + 2, JSONObject([("message", .string("twin"))]), sequence: IntakeSequence(generation: generation, position: 5001))]
        #expect(try await store.write(events: twins, quarantined: []) == 1)
        #expect(try await store.write(events: twins, quarantined: []) == 0)
        #expect(try await count(store, "*") == 21)
        // Without sequences (direct writers), keys alone decide.
        let fresh = [event(900, at: day + 5, JSONObject([("message", .string("direct"))]))]
        #expect(try await store.write(events: fresh, quarantined: []) == 1)
        #expect(try await store.write(events: fresh, quarantined: []) == 0)
        // A quarantined record replayed is kept once.
        let item = QuarantineItem(tenant: acme, reason: .malformedJSON, detail: "d", source: "ingest", received: day + 10, raw: Array("{".utf8),
                                  sequence: IntakeSequence(generation: generation, position: 7000))
        _ = try await store.write(events: [], quarantined: [item, item])
        _ = try await store.write(events: [], quarantined: [item])
        #expect(try await store.quarantine(tenant: acme, reason: nil, from: day, to: day + 86_400_000, limit: 10).count == 1)
    }

    @Test func phrasesAndSeveralTokenTermsMatchOnlyTokensInOrder() async throws {
        let (store, _) = try makeStore()
        let messages = [
            "Failed password for root from 10.1.2.3 port 22",  // 0
            "password Failed for root from 10.1.2.30 port 22",  // 1
            "failed: password reset for root from 10.1.2.3",  // 2 (the colon separates, tokens adjacent)
            "nothing to see from 110.1.2.3",  // 3
        ]
        _ = try await store.write(events: messages.enumerated().map { event(UInt64($0.offset), at: day + Int64($0.offset), JSONObject([("message", .string($0.element))])) },
                                  quarantined: [])
        func keys(_ query: String) async throws -> [UInt64] {
            let result = try await store.search(SearchRequest(tenant: acme, query: try QueryParser().parse(query), from: day, to: day + 1000, limit: 100, budget: patientBudget()))
            return result.events.map(\.key.low).sorted()
        }
        #expect(try await keys(#""failed password""#) == [0, 2])
        #expect(try await keys("failed password") == [0, 1, 2])
        #expect(try await keys(#"NOT "failed password""#) == [1, 3])
        #expect(try await keys(#"root AND NOT "failed password""#) == [1])
        #expect(try await keys(#""failed password" OR "see from""#) == [0, 2, 3])
        let ip = try await keys("10.1.2.3")
        #expect(ip == [0, 2], "110.1.2.3 holds the token 110, not 10: \(ip)")
        #expect(try await keys("10.1.2.3*") == [0, 1, 2])
        #expect(try await keys(#""password reset" OR message:nothing*"#) == [2, 3])
        #expect(try await keys(#"("failed password" AND port) OR zzz"#) == [0])
        guard case .events(let page) = try await store.search(SearchRequest(tenant: acme, query: try QueryParser().parse(#""root from 10.1.2.3""#),
                                                                               from: day, to: day + 1000, limit: 10, budget: patientBudget(), highlight: true)) else { return }
        #expect(page.hits.map { $0.highlights["message"]?.snippet ?? "" }.sorted() == [
            "Failed password for <mark>root from 10.1.2.3</mark> port 22",
            "failed: password reset for <mark>root from 10.1.2.3</mark>",
        ])
    }

    @Test func theTokenIndexMergesSixteenSegmentsAtATimeAndHolds64MiBOfABatchsPostings() async throws {
        let (store, _) = try makeStore()
        _ = try await store.write(events: [event(1, at: day + 1, JSONObject([("message", .string("one two"))]))], quarantined: [])
        let partition = try #require(try store.partition(acme, day: Timestamp.day(of: day), create: false))
        let automerge = try await partition.pool.read { db in try Int.fetchOne(db, sql: "SELECT v FROM event_fts_config WHERE k = 'automerge'") }
        #expect(automerge == SQLiteEventStore.tokenIndexAutomerge && automerge == 16)
        let hashBytes = try await partition.pool.read { db in try Int.fetchOne(db, sql: "SELECT v FROM event_fts_config WHERE k = 'hashsize'") }
        #expect(hashBytes == SQLiteEventStore.tokenIndexHashBytes && hashBytes == 64 << 20)
        #expect(try await count(store, "two") == 1)
    }

    @Test func lowCardinalityColumnsHoldTermIdsAndTextPastCapacity() async throws {
        let terms = TermTable(capacity: 2)
        #expect(terms.intern(["a", "b", "c"]) == ["a": 1, "b": 2])
        #expect(terms.intern(["b", "d"]) == ["b": 2])
        #expect(terms.value(2) == "b" && terms.id("c") == nil)

        let (store, _) = try makeStore()
        var fields = JSONObject([("message", .string("one"))])
        FieldNesting.set(.string("panos.traffic"), at: "event.dataset", in: &fields)
        FieldNesting.set(.string("Palo Alto Networks"), at: "observer.vendor", in: &fields)
        _ = try await store.write(events: [event(1, at: day + 1, fields)], quarantined: [])
        let partition = try #require(try store.partition(acme, day: Timestamp.day(of: day), create: false))
        // A row written past a full term table keeps its text in the column.
        try await partition.pool.write { db in
            let row = try #require(try Row.fetchOne(db, sql: "SELECT typeof(dataset) AS t, body, key FROM event"))
            #expect(row["t"] as String == "integer")
            try db.execute(sql: "INSERT INTO event (id, ingested, key, dataset, observer_vendor, body) VALUES (?, ?, ?, 'zeek.conn', 'Zeek', ?)",
                           arguments: [SQLiteEventStore.position(of: day + 2), day + 3, Data(EventKey(high: 7, low: 2).bytes), row["body"] as Data])
        }
        #expect(try await count(store, "event.dataset:panos.traffic") == 1)
        #expect(try await count(store, "event.dataset:zeek.conn") == 1)
        #expect(try await count(store, #"observer.vendor:"Palo Alto Networks""#) == 1)
        #expect(try await count(store, "event.dataset:pan*") == 1)
        let result = try await store.search(SearchRequest(tenant: acme, query: try QueryParser().parse("event.dataset:* | stats count() by event.dataset, observer.vendor"),
                                                          from: day, to: day + 86_400_000, limit: 10, budget: patientBudget()))
        #expect(result.table?.rows.map { $0.map { "\($0)" } }.sorted { $0[0] < $1[0] } == [
            ["string(\"panos.traffic\")", "string(\"Palo Alto Networks\")", "int(1)"],
            ["string(\"zeek.conn\")", "string(\"Zeek\")", "int(1)"],
        ])
    }

    /// The phrase check's ASCII path answers what the general one (tokens, folded) answers,
    /// on random texts and phrases over a small alphabet, so that phrases often match.
    @Test func thePhraseChecksASCIIPathAgreesWithTheGeneralOne() {
        var random = SplitMix64(seed: 0x5EED_F7)
        let pieces = ["a", "B", "ab", "Ab", "b1", "10", "1", "x"]
        let separators = [" ", ".", ":", "-", "  ", "/", "_", "\t"]
        func text(_ count: Int) -> String {
            (0..<count).map { _ in pieces.randomElement(using: &random)! + separators.randomElement(using: &random)! }.joined()
        }
        var matched = 0, checked = 0
        for _ in 0..<4_000 {
            let haystack = text(Int.random(in: 0...12, using: &random))
            let phrase = FullTextTokens.tokens(of: text(Int.random(in: 1...3, using: &random))).map { FullTextTokens.fold($0) }
            guard !phrase.isEmpty else { continue }
            for prefix in [false, true] {
                let general = !FullTextTokens.phraseStarts(in: FullTextTokens.tokens(of: haystack).map { FullTextTokens.fold($0) }, phrase: phrase,
                                                            prefix: prefix, first: true).isEmpty
                let ascii = FullTextTokens.asciiContains(haystack, phrase: phrase, prefix: prefix)
                #expect(ascii == general, "\(haystack) \(phrase) prefix: \(prefix)")
                checked += 1
                if general { matched += 1 }
            }
        }
        #expect(matched > checked / 10 && matched < checked * 9 / 10, "both answers are common: \(matched) of \(checked)")
        #expect(FullTextTokens.asciiContains("Zoë failed", phrase: ["failed"], prefix: false) == nil)
        #expect(FullTextTokens.asciiContains("failed", phrase: ["zoë"], prefix: false) == nil)
        #expect(FullTextTokens.contains("Connexion refusée pour Zoë", phrase: ["refusee", "pour"], prefix: false))
    }

    @Test func tokensAreCutWhereTheTokenIndexCutsThem() throws {
        let texts = [
            "Connexion refusée pour l'utilisateur Zoë", "日本語のテキスト and ascii", "a_b-c.d/e:f", "x\u{301}y combining",
            "🔥fire🔥 emoji", "１２３ fullwidth", "Ⅻ roman ½ half", "tab\tnew\nline", "ÄÖÜ straße İstanbul", "\u{E000}private",
        ]
        let queue = try DatabaseQueue()
        try queue.write { db in
            try db.execute(sql: "CREATE VIRTUAL TABLE t USING fts5(x, tokenize='unicode61 remove_diacritics 2')")
            try db.execute(sql: "CREATE VIRTUAL TABLE v USING fts5vocab(t, 'instance')")
            for (i, text) in texts.enumerated() {
                try db.execute(sql: "INSERT INTO t (rowid, x) VALUES (?, ?)", arguments: [i, text])
                let theirs = try Int.fetchOne(db, sql: "SELECT count(*) FROM v WHERE doc = ?", arguments: [i]) ?? -1
                let ours = FullTextTokens.tokens(of: text)
                #expect(ours.count == theirs, "\(text): \(ours)")
                for token in ours {
                    let quoted = "\"" + token.replacingOccurrences(of: "\"", with: "\"\"") + "\""
                    #expect(try Int.fetchOne(db, sql: "SELECT count(*) FROM t WHERE t MATCH ? AND rowid = ?", arguments: [quoted, i]) == 1, "\(text): \(token)")
                }
            }
        }
    }

    /// An address's token is its marker and its bytes in hex, as the v6 migration builds it in
    /// SQL (`lower(hex(value))`), and a row's indexed text is the message, then each address's
    /// token, one space apart.
    @Test func addressTokensAreTheMarkerAndTheValuesHexAsTheMigrationWritesThem() throws {
        let values = ["10.1.2.3", "2001:db8::1", "", "ünïcode", "日本", "255.255.255.255"]
        let queue = try DatabaseQueue()
        try queue.read { db in
            for value in values {
                let theirs = try String.fetchOne(db, sql: "SELECT 'vsip' || lower(hex(?))", arguments: [value])
                #expect(SQLiteDialect.fieldToken(SQLiteDialect.sourceAddressMarker, value) == theirs, "\(value)")
            }
        }
        for message in [nil, "", "Failed password for root"] as [String?] {
            for source in [nil, "10.1.2.3"] as [String?] {
                for destination in [nil, "203.0.113.9", "::1"] as [String?] {
                    // Each address appended as its own piece, as the text was built before.
                    var expected = message
                    for (marker, value) in [("vsip", source), ("vdip", destination)] {
                        guard let value else { continue }
                        let token = marker + value.utf8.map { String(format: "%02x", $0) }.joined()
                        expected = expected.map { $0 + " " + token } ?? token
                    }
                    #expect(SQLiteEventStore.indexedText(message: message, sourceIP: source, destinationIP: destination) == expected)
                }
            }
        }
    }
}
