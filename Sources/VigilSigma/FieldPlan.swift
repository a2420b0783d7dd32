import VigilCore

/// The field names of a rule set, numbered once, with the paths that resolve each of them, so
/// an event resolves a field by array index instead of hashing its name at every step.
///
/// Resolution is `SigmaEvent.resolve`'s: the EventData item of the name, then each mapped
/// path, then the name as a path. A path is looked up only when the document has a top-level
/// key that is the path, or a part of it up to a dot; `JSONValue.value(atPath:)` finds nothing
/// otherwise, and most fields a rule set names are absent from most events.
final class FieldPlan: Sendable {
    /// Per event, a field it resolved: the value (nil: absent), its prepared texts.
    struct Slot {
        var value: JSONValue?
        var texts: [Text]?
    }

    struct Path: Sendable {
        let path: String
        /// Top-level keys (by number) of which the document needs one for `path` to resolve;
        /// empty: always looked up (a leading dot, which the lookup skips).
        let keys: [Int]
        /// `SigmaEvent.parts(path)`.
        let parts: [String]?
    }

    /// Field names to numbers; per event, each EventData name is looked up here.
    let ids: KeyNumbers
    /// Per field number, the paths tried in order.
    let paths: [[Path]]
    /// Top-level keys to numbers; per event, each top-level key is looked up here.
    let topLevelKeys: KeyNumbers

    init(names: [String], mapping: FieldMapping) {
        var ids: [String: Int] = [:]
        var topLevelKeys: [String: Int] = [:]
        var paths: [[Path]] = []
        func number(_ key: String) -> Int {
            if let known = topLevelKeys[key] { return known }
            topLevelKeys[key] = topLevelKeys.count
            return topLevelKeys.count - 1
        }
        func planned(_ path: String) -> Path {
            let utf8 = path.utf8
            guard utf8.first != UInt8(ascii: ".") else { return Path(path: path, keys: [], parts: SigmaEvent.parts(path)) }
            var keys: [Int] = []
            var start = utf8.startIndex
            while let dot = utf8[start...].firstIndex(of: UInt8(ascii: ".")) {
                keys.append(number(String(path[..<dot])))
                start = utf8.index(after: dot)
            }
            keys.append(number(path))
            return Path(path: path, keys: keys, parts: SigmaEvent.parts(path))
        }
        for name in names where ids[name] == nil {
            ids[name] = paths.count
            paths.append(((mapping.fields[name] ?? []) + [name]).map(planned))
        }
        self.ids = KeyNumbers(ids)
        self.paths = paths
        self.topLevelKeys = KeyNumbers(topLevelKeys)
    }
}

/// The logsource predicates of a rule set's groups, decided together: each distinct path is
/// read once per event and its text looked up once (twice when lower-casing changes it) in a
/// table of the tests it satisfies.
struct LogsourcePlan: Sendable {
    /// A class: visiting one retains it once, not each of its members.
    final class PathTests: Sendable {
        let path: String
        /// `SigmaEvent.parts(path)`.
        let parts: [String]?
        /// Value → its place in `lists`: the tests (by number) it satisfies.
        let values: KeyNumbers
        let lists: [[Int]]

        init(path: String, parts: [String]?, values: KeyNumbers, lists: [[Int]]) {
            self.path = path
            self.parts = parts
            self.values = values
            self.lists = lists
        }
    }

    let paths: [PathTests]
    let testCount: Int
    /// Per group: any of its clauses holds, a clause when all of its tests (by number) hold.
    let groups: [[[Int]]]

    init(_ predicates: [LogsourcePredicate]) {
        var numbers: [String: Int] = [:]  // path + sorted values → test number
        var byPath: [String: (parts: [String]?, tests: [String: [Int]])] = [:]
        var order: [String] = []
        groups = predicates.map { predicate in
            predicate.clauses.map { clause in
                clause.map { test in
                    let identity = ([test.path] + test.values.sorted()).joined(separator: "\u{0}")
                    if let known = numbers[identity] { return known }
                    let id = numbers.count
                    numbers[identity] = id
                    if byPath[test.path] == nil {
                        order.append(test.path)
                        byPath[test.path] = (test.parts, [:])
                    }
                    for value in test.values { byPath[test.path]!.tests[value, default: []].append(id) }
                    return id
                }
            }
        }
        paths = order.map { path in
            let tests = byPath[path]!.tests
            let values = Array(tests.keys)
            return PathTests(path: path, parts: byPath[path]!.parts, values: KeyNumbers(Dictionary(uniqueKeysWithValues: values.enumerated().map { ($1, $0) })),
                             lists: values.map { tests[$0]! })
        }
        testCount = numbers.count
    }

    /// Per group, whether the event belongs to it (`LogsourcePredicate.matches` for each),
    /// written into `verdicts`. Lists are read through buffers: a list copied out of its array
    /// is retained and released.
    func verdicts(_ event: SigmaEvent, into verdicts: UnsafeMutableBufferPointer<Bool>) {
        // On the stack: an `Array(repeating:count:)` looks its storage type up at run time.
        withUnsafeTemporaryAllocation(of: Bool.self, capacity: testCount) { hit in
            hit.initialize(repeating: false)
            paths.withUnsafeBufferPointer { paths in
                for p in 0..<paths.count {
                    guard let text = event.value(atPath: paths[p].path, parts: paths[p].parts)?.scalarText else { continue }
                    func mark(_ list: Int) {
                        paths[p].lists[list].withUnsafeBufferPointer { tests in
                            for t in 0..<tests.count { hit[tests[t]] = true }
                        }
                    }
                    if let list = paths[p].values[text] { mark(list) }
                    // A test holds for the text or its lower-cased form; ASCII without capitals is its own.
                    if let lowered = Self.lowercasedIfChanged(text), let list = paths[p].values[lowered] { mark(list) }
                }
            }
            groups.withUnsafeBufferPointer { groups in
                for g in 0..<groups.count {
                    verdicts[g] = groups[g].withUnsafeBufferPointer { clauses in
                        for c in 0..<clauses.count where clauses[c].withUnsafeBufferPointer({ tests in tests.allSatisfy { hit[$0] } }) { return true }
                        return false
                    }
                }
            }
        }
    }

    /// `text.lowercased()` when that differs from `text` (nil: it is its own); ASCII is
    /// lower-cased by byte.
    static func lowercasedIfChanged(_ text: String) -> String? {
        var text = text
        return text.withUTF8 { utf8 -> String? in
            var capitals = false
            for i in 0..<utf8.count {
                if utf8[i] >= 0x80 { return String(decoding: utf8, as: UTF8.self).lowercased() }
                if utf8[i] >= 0x41, utf8[i] <= 0x5A { capitals = true }
            }
            guard capitals else { return nil }
            return String(unsafeUninitializedCapacity: utf8.count) { buffer in
                for i in 0..<utf8.count { buffer[i] = ValueMatcher.asciiLowercased(utf8[i]) }
                return utf8.count
            }
        }
    }
}

extension SigmaRule {
    /// The rule with each field condition's `id` set from `plan` (names it lacks keep -1).
    func numbering(_ plan: FieldPlan) -> SigmaRule {
        var copy = self
        copy.selections = selections.map { selection in
            guard case .maps(let maps) = selection.kind else { return selection }
            return Selection(kind: .maps(maps.map { conditions in
                conditions.map { condition in
                    condition.field.isEmpty ? condition : condition.numbered(plan.ids[condition.field] ?? -1)
                }
            }))
        }
        return copy
    }

    /// Every field name the rule's selections read (fieldref targets too).
    var fieldNames: [String] {
        var out: [String] = []
        for selection in selections {
            guard case .maps(let maps) = selection.kind else { continue }
            for conditions in maps {
                for condition in conditions where !condition.field.isEmpty {
                    out.append(condition.field)
                    for case .fieldref(let other) in condition.matchers { out.append(other) }
                }
            }
        }
        return out
    }
}
