import Foundation
import VigilCore

/// Many Sigma rules against one event without trying every rule.
///
/// Each rule gets a *trigger*: clauses of (field, literal) atoms such that whenever the rule
/// matches an event, every clause has an atom whose literal occurs (lower-cased) in that
/// field of the event. It is derived from the condition: `and` and `all of` keep the clauses
/// of their parts (the most selective few), `or` and `N of` need one of their parts (one
/// clause: the union of each part's best clause), a map is the `and` of its conditions, a
/// selection the `or` of its maps, `not` gives nothing to require. A rule with no trigger
/// (only regexes, comparisons, `exists`, negations...) is tried on every event of its
/// logsource.
///
/// Rules are grouped by logsource; per group and field one Aho-Corasick automaton finds, in
/// a single pass over the field's texts, every literal that occurs. Only rules whose clauses
/// all have a hit are evaluated in full, so the verdicts are exactly those of
/// `SigmaRule.matches`; the index only decides which rules can be skipped.
public struct SigmaRuleSet: Sendable {
    public let rules: [SigmaRule]
    /// Per rule, its condition and selections (also with every field condition numbered by
    /// `plan`: evaluated on the set's own events, they read fields by number), as flat tables.
    let programs: RulePrograms
    /// How the set's events resolve Sigma field names.
    public let mapping: FieldMapping
    let groups: [LogsourceGroup]
    let plan: FieldPlan
    let logsources: LogsourcePlan
    /// Per rule, the clause bits that must all be hit (0: the rule has no trigger).
    let required: [UInt8]

    /// Rules that have a trigger (the others are tried on every event of their logsource).
    public var indexedCount: Int { required.count { $0 != 0 } }

    /// A clause hit of a literal: the rule and the clause's bit.
    struct Posting: Sendable {
        let rule: Int32
        let bit: UInt8
    }

    /// A class, visited by `unowned(unsafe)` reference (see `Selection`); its tables are raw
    /// memory (freed in `deinit`), which a scan reads without reference counting.
    final class FieldIndex: @unchecked Sendable {
        let field: String
        /// The field's number in the plan (-1 for keywords).
        let id: Int
        let automaton: LiteralAutomaton
        /// Per literal id of the automaton, the clauses it satisfies: `postings[starts[id]..<starts[id + 1]]`.
        let postings: UnsafeMutableBufferPointer<Posting>
        let starts: UnsafeMutableBufferPointer<Int32>
        /// Literal ids that any text that is not ASCII counts as containing.
        let foldSensitive: [Int]

        init(field: String, id: Int, automaton: LiteralAutomaton, postings: [Posting], starts: [Int32], foldSensitive: [Int]) {
            self.field = field
            self.id = id
            self.automaton = automaton
            self.postings = .frozen(postings)
            self.starts = .frozen(starts)
            self.foldSensitive = foldSensitive
        }

        deinit {
            postings.free()
            starts.free()
        }
    }

    struct LogsourceGroup: Sendable {
        let logsource: LogsourcePredicate
        let logsourceKey: Int
        /// Per field (`""`: every text of the event, for keywords): the automaton and, per
        /// literal of it, the clauses it satisfies.
        let fields: [FieldIndex]
        /// Rules without a trigger.
        let always: [Int32]
    }

    /// At most this many clauses per rule are indexed (the most selective ones).
    static let maxClauses = 4

    public init(_ rules: [SigmaRule], mapping: FieldMapping = .standard) {
        self.rules = rules
        self.mapping = mapping
        let plan = FieldPlan(names: rules.flatMap(\.fieldNames), mapping: mapping)
        self.plan = plan
        programs = RulePrograms(conditions: rules.map(\.condition), selections: rules.map(\.selections),
                                plannedSelections: rules.map { $0.numbering(plan).selections })
        var order: [Int] = []
        var byKey: [Int: (logsource: LogsourcePredicate, always: [Int32], atoms: [Atom: [Posting]])] = [:]
        var required = [UInt8](repeating: 0, count: rules.count)
        for (index, rule) in rules.enumerated() {
            if byKey[rule.logsourceKey] == nil {
                order.append(rule.logsourceKey)
                byKey[rule.logsourceKey] = (rule.logsource, [], [:])
            }
            guard let clauses = rule.trigger() else {
                byKey[rule.logsourceKey]!.always.append(Int32(index))
                continue
            }
            for (number, clause) in clauses.prefix(Self.maxClauses).enumerated() {
                let bit = UInt8(1) << UInt8(number)
                required[index] |= bit
                for atom in Set(clause) { byKey[rule.logsourceKey]!.atoms[atom, default: []].append(Posting(rule: Int32(index), bit: bit)) }
            }
        }
        self.required = required
        groups = order.map { key in
            let entry = byKey[key]!
            var perField: [String: [(atom: Atom, postings: [Posting])]] = [:]
            for (atom, postings) in entry.atoms { perField[atom.field, default: []].append((atom, postings)) }
            let fields = perField.keys.sorted().map { field in
                let literals = perField[field]!.sorted { a, b in
                    a.atom.literal == b.atom.literal ? !a.atom.foldSensitive && b.atom.foldSensitive : a.atom.literal.lexicographicallyPrecedes(b.atom.literal)
                }
                var starts: [Int32] = [0]
                for literal in literals { starts.append(starts[starts.count - 1] + Int32(literal.postings.count)) }
                return FieldIndex(field: field, id: plan.ids[field] ?? -1, automaton: LiteralAutomaton(literals.map(\.atom.literal)),
                                  postings: literals.flatMap(\.postings), starts: starts,
                                  foldSensitive: literals.indices.filter { literals[$0].atom.foldSensitive })
            }
            return LogsourceGroup(logsource: entry.logsource, logsourceKey: key, fields: fields, always: entry.always)
        }
        logsources = LogsourcePlan(groups.map(\.logsource))
    }

    /// An event prepared for this set: its fields resolved through the set's numbered names
    /// and mapping.
    public func event(_ fields: JSONObject) -> SigmaEvent {
        SigmaEvent(fields, mapping: mapping, plan: plan)
    }

    /// Indexes (into `rules`, ascending) of the rules that match the event.
    public func matches(_ fields: JSONObject) -> [Int] { matches(event(fields)) }

    /// An event prepared from flat fields (`FlatFields`) and members added at their top level:
    /// the same event as `event(_:)` of their nested document with those members set in it,
    /// which the fields are read as only where they cannot answer a field themselves.
    public func event(flat: FlatFields, appending: JSONObject) -> SigmaEvent {
        // Windows events read their `EventData` as a whole, and a member replacing one of the
        // fields' own hides them: from the document.
        guard !flat.schema.topLevelKeys.contains("winlog"), appending["winlog"] == nil, !flat.isReplaced(by: appending) else {
            return event(flat.object(setting: appending))
        }
        return SigmaEvent(flat: flat, appending: appending, mapping: mapping, plan: plan)
    }

    /// `matches(_:)` of flat fields with members added at their top level.
    public func matches(flat: FlatFields, appending: JSONObject) -> [Int] { matches(event(flat: flat, appending: appending)) }

    /// The same on a prepared event (one made by `event(_:)` resolves fastest).
    public func matches(_ event: SigmaEvent) -> [Int] {
        // Per rule, its clause bits hit so far; on the stack, as an `Array(repeating:count:)`
        // looks its storage type up at run time.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: rules.count) { hits in
            hits.initialize(repeating: 0)
            return matches(event, hits: hits)
        }
    }

    func matches(_ event: SigmaEvent, hits: UnsafeMutableBufferPointer<UInt8>) -> [Int] {
        // The rules hit so far, each once (a rule is touched when its first bit is set), on
        // the stack: a captured array was boxed, and each append checked exclusive access.
        withUnsafeTemporaryAllocation(of: Int32.self, capacity: rules.count) { touched in
            withUnsafeTemporaryAllocation(of: Int.self, capacity: 1) { touchedCount in
                touchedCount.initialize(repeating: 0)
                return matches(event, hits: hits, touched: touched, touchedCount: touchedCount.baseAddress!)
            }
        }
    }

    func matches(_ event: SigmaEvent, hits: UnsafeMutableBufferPointer<UInt8>, touched: UnsafeMutableBufferPointer<Int32>,
                 touchedCount: UnsafeMutablePointer<Int>) -> [Int] {
        var candidates: [Int32] = []
        let planned = event.plan === plan
        // Through the buffers: a `for` over the arrays would copy (and retain) every group and
        // field index it visits.
        withUnsafeTemporaryAllocation(of: Bool.self, capacity: groups.count) { belongs in
            logsources.verdicts(event, into: belongs)
            groups.withUnsafeBufferPointer { groups in
                for number in 0..<groups.count where belongs[number] {
                    candidates += groups[number].always
                    groups[number].fields.withUnsafeBufferPointer { fields in
                        for f in 0..<fields.count {
                            // Unretained (see `Selection`): the set holds its indexes.
                            unowned(unsafe) let index = fields[f]
                            let texts = index.field.isEmpty ? event.allTexts : planned && index.id >= 0 ? event.texts(id: index.id) : event.texts(index.field)
                            guard !texts.isEmpty else { continue }
                            // Texts, postings and automaton through buffers as well: copying a text
                            // or a posting list out of its array retains it, and atomic reference
                            // counting was a third of the instructions spent here.
                            let postings = index.postings, starts = index.starts
                            unowned(unsafe) let automaton = index.automaton
                            func hit(_ literal: Int) {
                                for p in Int(starts[literal])..<Int(starts[literal + 1]) {
                                    let rule = Int(postings[p].rule)
                                    if hits[rule] == 0 {
                                        touched[touchedCount.pointee] = postings[p].rule
                                        touchedCount.pointee += 1
                                    }
                                    hits[rule] |= postings[p].bit
                                }
                            }
                            texts.withUnsafeBufferPointer { texts in
                                for t in 0..<texts.count {
                                    texts[t].lower.withUnsafeBufferPointer { lower in
                                        automaton.scan(lower, hit)
                                        if !index.foldSensitive.isEmpty, lower.contains(where: { $0 >= 0x80 }) { index.foldSensitive.forEach(hit) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        for t in 0..<touchedCount.pointee where hits[Int(touched[t])] == required[Int(touched[t])] { candidates.append(touched[t]) }
        guard !candidates.isEmpty else { return [] }
        candidates.sort()
        unowned(unsafe) let programs = programs
        var matched: [Int] = []
        for c in 0..<candidates.count {
            let rule = Int(candidates[c])
            if programs.evaluate(rule: rule, planned: planned, event) { matched.append(rule) }
        }
        return matched
    }
}

/// The rules' conditions and selections as flat tables in raw memory (freed in `deinit`),
/// evaluated as `SigmaRule.evaluate` evaluates the condition tree, part by part in the same
/// order. Evaluated in place, the tree (an indirect enum: a box per node) and the arrays of
/// selections were retained and released at every step: atomic writes to memory that the
/// threads admitting events all read.
final class RulePrograms: @unchecked Sendable {
    struct Node: BitwiseCopyable {
        enum Kind: UInt8 { case selection, and, or, not, count, all }
        var kind: Kind
        /// The selection (`.selection`) or the minimum (`.count`).
        var value: Int32
        /// `children[first..<first + count]`: nodes (`and`, `or`, `not`) or selections (`count`, `all`).
        var first: Int32
        var count: Int32
    }

    let nodes: UnsafeMutableBufferPointer<Node>
    let children: UnsafeMutableBufferPointer<Int32>
    /// Per rule, its condition's root node and where its selections start in the tables below.
    let roots: UnsafeMutableBufferPointer<Int32>
    let selectionStarts: UnsafeMutableBufferPointer<Int32>
    /// Every rule's selections one after another, unretained (`held` keeps them).
    let selections: UnsafeMutableBufferPointer<Unmanaged<Selection>>
    let plannedSelections: UnsafeMutableBufferPointer<Unmanaged<Selection>>
    private let held: [[Selection]]

    init(conditions: [ConditionNode], selections: [[Selection]], plannedSelections: [[Selection]]) {
        // One start per rule serves both tables: numbering keeps each selection in its place.
        precondition(selections.map(\.count) == plannedSelections.map(\.count), "a rule's numbered selections are its selections")
        var nodes: [Node] = []
        var children: [Int32] = []
        func add(_ condition: ConditionNode) -> Int32 {
            func parent(_ kind: Node.Kind, value: Int32 = 0, _ members: [Int32]) -> Node {
                let first = Int32(children.count)
                children += members
                return Node(kind: kind, value: value, first: first, count: Int32(members.count))
            }
            let node: Node
            switch condition {
            case .selection(let index): node = Node(kind: .selection, value: Int32(index), first: 0, count: 0)
            case .and(let parts): node = parent(.and, parts.map(add))
            case .or(let parts): node = parent(.or, parts.map(add))
            case .not(let inner): node = parent(.not, [add(inner)])
            case .count(let minimum, let names): node = parent(.count, value: Int32(clamping: minimum), names.map { Int32($0) })
            case .all(let names): node = parent(.all, names.map { Int32($0) })
            }
            nodes.append(node)
            return Int32(nodes.count - 1)
        }
        let roots = conditions.map(add)
        var starts: [Int32] = []
        var start: Int32 = 0
        for own in selections {
            starts.append(start)
            start += Int32(own.count)
        }
        self.nodes = .frozen(nodes)
        self.children = .frozen(children)
        self.roots = .frozen(roots)
        self.selectionStarts = .frozen(starts)
        self.selections = .frozen(selections.joined().map { Unmanaged.passUnretained($0) })
        self.plannedSelections = .frozen(plannedSelections.joined().map { Unmanaged.passUnretained($0) })
        held = selections + plannedSelections
    }

    deinit {
        nodes.free()
        children.free()
        roots.free()
        selectionStarts.free()
        selections.free()
        plannedSelections.free()
    }

    /// Whether the rule's condition holds for the event, with its numbered selections when
    /// the event was prepared by the set (`planned`).
    func evaluate(rule: Int, planned: Bool, _ event: SigmaEvent) -> Bool {
        let own = (planned ? plannedSelections : selections).baseAddress! + Int(selectionStarts[rule])
        return holds(Int(roots[rule]), own, event)
    }

    private func holds(_ index: Int, _ own: UnsafeMutablePointer<Unmanaged<Selection>>, _ event: SigmaEvent) -> Bool {
        func selection(_ number: Int32) -> Bool {
            own[Int(number)]._withUnsafeGuaranteedRef { $0.matches(event) }
        }
        let node = nodes[index]
        let members = Int(node.first)..<Int(node.first + node.count)
        switch node.kind {
        case .selection: return selection(node.value)
        case .and:
            for m in members where !holds(Int(children[m]), own, event) { return false }
            return true
        case .or:
            for m in members where holds(Int(children[m]), own, event) { return true }
            return false
        case .not: return !holds(Int(children[members.lowerBound]), own, event)
        case .count:
            var hits: Int32 = 0
            for m in members where selection(children[m]) {
                hits += 1
                if hits >= node.value { return true }
            }
            return false
        case .all:
            for m in members where !selection(children[m]) { return false }
            return true
        }
    }
}

/// One literal that must occur (lower-cased) in one of the field's texts.
struct Atom: Hashable, Sendable {
    /// Sigma field name; `""` for keywords (any text of the event).
    let field: String
    let literal: [UInt8]
    /// From a case-insensitive regex: ICU folds case fully (`ſ` matches `s`, `ﬁ` matches
    /// `fi`, the Kelvin sign `k`), which lower-casing does not, so a text that is not ASCII
    /// counts as a hit.
    var foldSensitive = false
}

/// Clauses that must each have a hit; each clause is a list of atoms of which one must occur.
typealias Trigger = [[Atom]]

extension SigmaRule {
    /// The rule's trigger (nil: none can be named).
    func trigger() -> Trigger? { trigger(condition) }

    func trigger(_ node: ConditionNode) -> Trigger? {
        switch node {
        case .selection(let index): return selections[index].trigger()
        case .and(let nodes): return Atom.all(nodes.map { trigger($0) })
        case .or(let nodes): return Atom.any(nodes.map { trigger($0) })
        case .not: return nil
        case .count(_, let indexes): return Atom.any(indexes.map { selections[$0].trigger() })
        case .all(let indexes): return Atom.all(indexes.map { selections[$0].trigger() })
        }
    }
}

extension Selection {
    func trigger() -> Trigger? {
        switch kind {
        case .maps(let maps):
            return Atom.any(maps.map { conditions in Atom.all(conditions.map { $0.trigger() }) })
        case .keywords(let matchers):
            return Atom.any(matchers.map { $0.trigger(field: "") })
        }
    }
}

extension FieldCondition {
    func trigger() -> Trigger? {
        let parts = matchers.map { $0.trigger(field: field) }
        return requireAll ? Atom.all(parts) : Atom.any(parts)
    }
}

extension ValueMatcher {
    func trigger(field: String) -> Trigger? {
        let literal: [UInt8]?
        switch self {
        case .text(let pattern): literal = pattern.requiredLiteral()
        case .regex(let box):
            guard let found = Self.requiredLiteral(regex: box.regex.pattern) else { return nil }
            let folds = found.foldsCase || box.regex.options.contains(.caseInsensitive)
            return [[Atom(field: field, literal: found.literal, foldSensitive: folds)]]
        default: literal = nil
        }
        return literal.map { [[Atom(field: field, literal: $0)]] }
    }

    /// The longest run of plain characters every match of a regular expression contains,
    /// lower-cased, and whether inline options fold case; nil when there is none or the
    /// expression is beyond this simple reading (top-level alternation, `\Q`, inline
    /// options other than `i`, `m`, `s`, non-ASCII). Groups, classes, escapes of letters or
    /// digits and anchors end a run; a quantifier takes back the character it applies to
    /// (`+` keeps it).
    static func requiredLiteral(regex: String) -> (literal: [UInt8], foldsCase: Bool)? {
        let chars = Array(regex.utf8)
        guard chars.allSatisfy({ $0 < 0x80 }) else { return nil }
        var runs: [[UInt8]] = [[]]
        var foldsCase = false
        func end() { if !runs[runs.count - 1].isEmpty { runs.append([]) } }
        var i = 0
        while i < chars.count {
            let c = chars[i]
            switch c {
            case UInt8(ascii: "|"):
                return nil
            case UInt8(ascii: "\\"):
                guard i + 1 < chars.count else { return nil }
                let next = chars[i + 1]
                if (next >= 0x30 && next <= 0x39) || (next | 0x20 >= 0x61 && next | 0x20 <= 0x7A) {
                    // Classes, anchors and single-character escapes end the run; escapes that
                    // read what follows (`\x41`, `\u`, `\c`, `\0`, `\k<n>`, `\p{..}`, `\Q`...)
                    // are beyond this reading.
                    guard Array("dDwWsSbBAzZGhHvVRXtnrfea".utf8).contains(next) else { return nil }
                    end()
                } else {
                    runs[runs.count - 1].append(next)
                }
                i += 2
                continue
            case UInt8(ascii: "("):
                // Inline options at the very start, `(?i)`: case folding for the rest.
                var depth = 0, j = i
                while j < chars.count {
                    if chars[j] == UInt8(ascii: "\\") { j += 2; continue }
                    if chars[j] == UInt8(ascii: "[") {
                        guard let close = Self.classEnd(chars, from: j) else { return nil }
                        j = close
                    } else if chars[j] == UInt8(ascii: "(") {
                        depth += 1
                    } else if chars[j] == UInt8(ascii: ")") {
                        depth -= 1
                        if depth == 0 { break }
                    }
                    j += 1
                }
                guard j < chars.count else { return nil }
                let group = chars[i..<(j + 1)]
                if group.starts(with: Array("(?".utf8)), let close = group.firstIndex(of: UInt8(ascii: ")")), close == j,
                   chars[(i + 2)..<j].allSatisfy({ [UInt8(ascii: "i"), UInt8(ascii: "m"), UInt8(ascii: "s")].contains($0) }) {
                    if chars[(i + 2)..<j].contains(UInt8(ascii: "i")) { foldsCase = true }
                } else if group.starts(with: Array("(?".utf8)), !group.starts(with: Array("(?:".utf8)), !group.starts(with: Array("(?=".utf8)),
                          !group.starts(with: Array("(?!".utf8)), !group.starts(with: Array("(?<=".utf8)), !group.starts(with: Array("(?<!".utf8)) {
                    return nil  // inline options or constructs this reading does not know
                }
                end()
                i = j + 1
                continue
            case UInt8(ascii: "["):
                guard let close = Self.classEnd(chars, from: i) else { return nil }
                end()
                i = close + 1
                continue
            case UInt8(ascii: "*"), UInt8(ascii: "?"), UInt8(ascii: "{"):
                if !runs[runs.count - 1].isEmpty { runs[runs.count - 1].removeLast() }
                end()
                if c == UInt8(ascii: "{") {
                    while i < chars.count, chars[i] != UInt8(ascii: "}") { i += 1 }
                }
            case UInt8(ascii: "+"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "$"), UInt8(ascii: ")"):
                end()
            default:
                runs[runs.count - 1].append(c)
            }
            i += 1
        }
        guard let longest = runs.max(by: { $0.count < $1.count }), !longest.isEmpty else { return nil }
        return (asciiLowercased(longest), foldsCase)
    }

    /// The index of the `]` closing the character class that opens at `start`; nil for the
    /// forms this reading leaves alone (nested sets, a leading `]`, no end).
    static func classEnd(_ chars: [UInt8], from start: Int) -> Int? {
        var j = start + 1
        if j < chars.count, chars[j] == UInt8(ascii: "^") { j += 1 }
        if j < chars.count, chars[j] == UInt8(ascii: "]") { return nil }
        while j < chars.count {
            switch chars[j] {
            case UInt8(ascii: "\\"): j += 2
            case UInt8(ascii: "["): return nil
            case UInt8(ascii: "]"): return j
            default: j += 1
            }
        }
        return nil
    }
}

extension TextPattern {
    /// The longest run of literal bytes every matching text contains, lower-cased (nil when
    /// the pattern has none, or a case-sensitive one that is not ASCII, whose lower-cased
    /// form could differ).
    func requiredLiteral() -> [UInt8]? {
        var runs: [[UInt8]]
        if let scalars {
            runs = [[]]
            for scalar in scalars {
                if scalar == "*" || scalar == "?" {
                    runs.append([])
                    continue
                }
                runs[runs.count - 1].append(contentsOf: ValueMatcher.literalBytes(scalar))
            }
        } else {
            runs = segments
        }
        guard var longest = runs.max(by: { $0.count < $1.count }), !longest.isEmpty else { return nil }
        if cased {
            guard longest.allSatisfy({ $0 < 0x80 }) else { return nil }
            longest = ValueMatcher.asciiLowercased(longest)
        }
        return longest
    }
}

extension Atom {
    /// How selective a clause is: the longer its shortest literal and the fewer its atoms, the better.
    static func score(_ clause: [Atom]) -> (Int, Int) {
        (clause.map(\.literal.count).min() ?? Int.max, -clause.count)
    }

    /// Every part holds: all their clauses (nil parts require nothing), most selective first.
    static func all(_ parts: [Trigger?]) -> Trigger? {
        let clauses = parts.compactMap { $0 }.flatMap { $0 }
        guard !clauses.isEmpty else { return nil }
        return Array(clauses.sorted { score($0) > score($1) }.prefix(SigmaRuleSet.maxClauses))
    }

    /// One of the parts holds (each must name something): one clause, the union of each
    /// part's best clause (a single part keeps all its clauses).
    static func any(_ parts: [Trigger?]) -> Trigger? {
        if parts.count == 1 { return parts[0] }
        var clause: [Atom] = []
        for part in parts {
            guard let best = part?.first else { return nil }
            clause += best
        }
        return [clause]
    }
}

/// Aho-Corasick over bytes: one pass over a text reports every literal that occurs in it.
/// Transitions are a dense table over the bytes the literals use (the rest share a class).
///
/// Its tables are raw memory, immutable once built (freed in `deinit`): a scan reads them
/// without reference counting.
final class LiteralAutomaton: @unchecked Sendable {
    let classes: UnsafeMutableBufferPointer<UInt16>
    let classCount: Int
    let next: UnsafeMutableBufferPointer<Int32>
    /// Literal ids ending at each state (own and by suffix), as ranges of `outputs`.
    let outputStart: UnsafeMutableBufferPointer<Int32>
    let outputs: UnsafeMutableBufferPointer<Int32>

    init(_ literals: [[UInt8]]) {
        var classes = [UInt16](repeating: 0, count: 256)
        var classCount = 1
        for literal in literals {
            for byte in literal where classes[Int(byte)] == 0 {
                classes[Int(byte)] = UInt16(classCount)
                classCount += 1
            }
        }
        // Trie.
        var next: [Int32] = Array(repeating: -1, count: classCount)
        var own: [[Int32]] = [[]]
        for (id, literal) in literals.enumerated() {
            var state = 0
            for byte in literal {
                let slot = state * classCount + Int(classes[Int(byte)])
                if next[slot] < 0 {
                    next[slot] = Int32(own.count)
                    own.append([])
                    next += Array(repeating: -1, count: classCount)
                }
                state = Int(next[slot])
            }
            own[state].append(Int32(id))
        }
        // Breadth-first: failure links, completed transitions, inherited outputs.
        let stateCount = own.count
        var fail = [Int32](repeating: 0, count: stateCount)
        var queue: [Int] = []
        for c in 0..<classCount {
            if next[c] < 0 { next[c] = 0 } else { queue.append(Int(next[c])) }
        }
        var head = 0
        while head < queue.count {
            let state = queue[head]
            head += 1
            own[state] += own[Int(fail[state])]
            for c in 0..<classCount {
                let slot = state * classCount + c
                let fallback = next[Int(fail[state]) * classCount + c]
                if next[slot] < 0 {
                    next[slot] = fallback
                } else {
                    fail[Int(next[slot])] = fallback
                    queue.append(Int(next[slot]))
                }
            }
        }
        var outputStart: [Int32] = [0]
        var outputs: [Int32] = []
        for state in 0..<stateCount {
            outputs += own[state]
            outputStart.append(Int32(outputs.count))
        }
        self.classes = .frozen(classes)
        self.classCount = classCount
        self.next = .frozen(next)
        self.outputStart = .frozen(outputStart)
        self.outputs = .frozen(outputs)
    }

    deinit {
        classes.free()
        next.free()
        outputStart.free()
        outputs.free()
    }

    /// Calls `found` with the id of every literal occurrence in `text` (a literal occurring
    /// several times is reported each time).
    @inline(__always)
    func scan(_ text: UnsafeBufferPointer<UInt8>, _ found: (Int) -> Void) {
        var state = 0
        for i in 0..<text.count {
            state = Int(next[state * classCount + Int(classes[Int(text[i])])])
            let start = Int(outputStart[state]), end = Int(outputStart[state + 1])
            if start != end {
                for o in start..<end { found(Int(outputs[o])) }
            }
        }
    }
}

extension UnsafeMutableBufferPointer where Element: BitwiseCopyable {
    /// A copy of the array in memory of its own, for tables read without reference counting;
    /// the owner calls `free()`.
    static func frozen(_ array: [Element]) -> UnsafeMutableBufferPointer<Element> {
        let memory = UnsafeMutablePointer<Element>.allocate(capacity: Swift.max(array.count, 1))
        array.withUnsafeBufferPointer { source in
            if let base = source.baseAddress { memory.initialize(from: base, count: source.count) }
        }
        return UnsafeMutableBufferPointer(start: memory, count: array.count)
    }

    /// Frees memory made by `frozen`.
    func free() { baseAddress?.deallocate() }
}
