import Foundation
import VigilCore
import VigilQuery
import Yams

/// A detection selection: a map (every field condition holds), a list of maps (any map
/// holds), or a list of keywords (any keyword occurs in the event's text).
///
/// Selections and field conditions are classes, visited through `unowned(unsafe)` references
/// while a rule is evaluated: a rule set is shared by the threads that admit events, and a
/// retain of a shared object (or of an array it holds) is an atomic write to a cache line the
/// other cores read too. The rule set holds them for as long as it is evaluated.
final class Selection: @unchecked Sendable {
    enum Kind: Sendable {
        case maps([[FieldCondition]])
        case keywords([ValueMatcher])
    }

    let kind: Kind
    /// The maps of `.maps` (empty for keywords).
    let maps: [[FieldCondition]]
    /// `maps` flat, in raw memory (freed in `deinit`): the conditions one after another,
    /// unretained (`maps` holds them), and where each map ends. Read in place, each map's
    /// array was retained and released, an atomic write to memory every admitting thread reads.
    private let conditions: UnsafeMutableBufferPointer<Unmanaged<FieldCondition>>
    private let mapEnds: UnsafeMutableBufferPointer<Int32>
    private let isKeywords: Bool

    init(kind: Kind) {
        self.kind = kind
        if case .maps(let maps) = kind { self.maps = maps } else { maps = [] }
        if case .keywords = kind { isKeywords = true } else { isKeywords = false }
        conditions = .frozen(maps.joined().map { Unmanaged.passUnretained($0) })
        var ends: [Int32] = []
        for map in maps { ends.append((ends.last ?? 0) + Int32(map.count)) }
        mapEnds = .frozen(ends)
    }

    deinit {
        conditions.free()
        mapEnds.free()
    }

    func matches(_ event: SigmaEvent) -> Bool {
        if isKeywords {
            guard case .keywords(let matchers) = kind else { return false }
            let texts = event.allTexts
            return matchers.contains { matcher in texts.contains { matcher.matchesText($0) } }
        }
        // Any map whose conditions all hold.
        var start = 0
        for m in 0..<mapEnds.count {
            let end = Int(mapEnds[m])
            var all = true
            for c in start..<end where !conditions[c]._withUnsafeGuaranteedRef({ $0.matches(event) }) {
                all = false
                break
            }
            if all { return true }
            start = end
        }
        return false
    }

    static func parse(_ node: Node, name: String, mapping: FieldMapping) throws(SigmaError) -> Selection {
        if let map = node.mapping {
            return Selection(kind: .maps([try conditions(map, mapping: mapping)]))
        }
        if let list = node.sequence {
            if list.allSatisfy({ $0.mapping != nil }) {
                var maps: [[FieldCondition]] = []
                for item in list { maps.append(try conditions(item.mapping!, mapping: mapping)) }
                return Selection(kind: .maps(maps))
            }
            if list.allSatisfy({ $0.scalar != nil }) {
                var matchers: [ValueMatcher] = []
                for item in list { matchers.append(try ValueMatcher.make(scalar: item, modifiers: ["contains"], mapping: mapping)) }
                return Selection(kind: .keywords(matchers))
            }
            throw SigmaError("invalid_detection", "selection '\(name)' mixes maps and plain values")
        }
        if node.scalar != nil {
            return Selection(kind: .keywords([try ValueMatcher.make(scalar: node, modifiers: ["contains"], mapping: mapping)]))
        }
        throw SigmaError("invalid_detection", "selection '\(name)' is neither a map, a list nor a keyword")
    }

    static func conditions(_ map: Node.Mapping, mapping: FieldMapping) throws(SigmaError) -> [FieldCondition] {
        var out: [FieldCondition] = []
        for (keyNode, valueNode) in map {
            guard let key = keyNode.string else { throw SigmaError("invalid_detection", "a field name must be a string") }
            out.append(try FieldCondition.parse(key: key, value: valueNode, mapping: mapping))
        }
        return out
    }
}

/// `Field|mod1|mod2: value(s)`.
final class FieldCondition: Sendable {
    let field: String
    let matchers: [ValueMatcher]
    /// `|all`: every value must match (otherwise any).
    let requireAll: Bool
    /// The field's number in a rule set's `FieldPlan` (-1: looked up by name). Only a rule set
    /// sets it (`numbered`), and only for events prepared with its plan.
    let id: Int
    /// `matchers` split for matching: the byte patterns (most of them), then the others. A
    /// pattern is tested in place; taking it out of its `ValueMatcher` copied (and retained)
    /// its arrays for every text tested. Which matcher is tried first does not change the
    /// verdict (any or all of them).
    let patterns: [TextPattern]
    let others: [ValueMatcher]

    init(field: String, matchers: [ValueMatcher], requireAll: Bool, id: Int = -1) {
        self.field = field
        self.matchers = matchers
        self.requireAll = requireAll
        self.id = id
        var patterns: [TextPattern] = []
        var others: [ValueMatcher] = []
        for matcher in matchers {
            if case .text(let pattern) = matcher, pattern.scalars == nil { patterns.append(pattern) } else { others.append(matcher) }
        }
        self.patterns = patterns
        self.others = others
    }

    /// The condition with the field number `id`.
    func numbered(_ id: Int) -> FieldCondition {
        FieldCondition(field: field, matchers: matchers, requireAll: requireAll, id: id)
    }

    static let known: Set<String> = ["contains", "startswith", "endswith", "all", "re", "i", "m", "s", "base64", "base64offset",
                                     "utf16le", "utf16be", "utf16", "wide", "windash", "cidr", "exists", "lt", "lte", "gt", "gte",
                                     "expand", "fieldref", "cased"]

    static func parse(key: String, value: Node, mapping: FieldMapping) throws(SigmaError) -> FieldCondition {
        let parts = key.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
        let field = parts[0]
        let modifiers = Array(parts.dropFirst())
        for modifier in modifiers where !known.contains(modifier) {
            throw SigmaError("unsupported_modifier", "\(modifier) (in \(key))")
        }
        var values: [Node] = []
        if let list = value.sequence { values = Array(list) } else { values = [value] }
        var matchers: [ValueMatcher] = []
        for item in values {
            guard item.scalar != nil || item.null != nil else { throw SigmaError("invalid_detection", "values of \(key) must be scalars") }
            matchers.append(contentsOf: try ValueMatcher.variants(scalar: item, modifiers: modifiers, mapping: mapping))
        }
        if values.isEmpty { matchers = [.null] }
        return FieldCondition(field: field, matchers: matchers, requireAll: modifiers.contains("all"))
    }

    func matches(_ event: SigmaEvent) -> Bool {
        if field.isEmpty {
            // Keyword-style condition without a field name.
            let texts = event.allTexts
            return requireAll ? matchers.allSatisfy { m in texts.contains { m.matchesText($0) } } : matchers.contains { m in texts.contains { m.matchesText($0) } }
        }
        // The field's texts are fetched once for all the values, by number when planned.
        let texts = id >= 0 ? event.texts(id: id) : event.texts(field)
        return texts.withUnsafeBufferPointer { texts in
            let decided = patterns.withUnsafeBufferPointer { patterns -> Bool? in
                for p in 0..<patterns.count {
                    var hit = false
                    for t in 0..<texts.count where patterns[p].matches(texts[t]) {
                        hit = true
                        break
                    }
                    if hit != requireAll { return hit }
                }
                return nil
            }
            if let decided { return decided }
            return others.withUnsafeBufferPointer { matchers in
                for m in 0..<matchers.count {
                    var hit = false
                    if matchers[m].testsText {
                        for t in 0..<texts.count where matchers[m].matchesText(texts[t]) {
                            hit = true
                            break
                        }
                    } else {
                        hit = matchers[m].matches(field, event)
                    }
                    if hit != requireAll { return hit }
                }
                return requireAll
            }
        }
    }
}

/// One value test against a field's value.
enum ValueMatcher: Sendable {
    /// The field is absent, null or empty.
    case null
    case exists(Bool)
    /// Wildcard text match.
    case text(TextPattern)
    case regex(NSRegularExpressionBox)
    case cidr(IPNetwork)
    case compare(String, Double)
    case fieldref(String)

    /// Several matchers for one value when a modifier expands it (windash, base64offset).
    static func variants(scalar: Node, modifiers: [String], mapping: FieldMapping) throws(SigmaError) -> [ValueMatcher] {
        if modifiers.contains("windash"), let text = scalar.string {
            var out: [ValueMatcher] = []
            for variant in windash(text) {
                out.append(try make(scalar: Node(variant), modifiers: modifiers.filter { $0 != "windash" }, mapping: mapping, original: scalar))
            }
            return out
        }
        if modifiers.contains("base64offset"), let text = scalar.string {
            guard modifiers.contains("contains") else {
                throw SigmaError("unsupported_modifier_combination", "base64offset needs contains")
            }
            let bytes = try encode(text, modifiers: modifiers)
            return base64Offsets(bytes).map { .text(TextPattern(["*"] + Array($0.unicodeScalars) + ["*"], cased: true)) }
        }
        return [try make(scalar: scalar, modifiers: modifiers, mapping: mapping)]
    }

    static func make(scalar: Node, modifiers: [String], mapping: FieldMapping, original: Node? = nil) throws(SigmaError) -> ValueMatcher {
        if scalar.null != nil, scalar.scalar?.style == .plain, (scalar.string == "null" || scalar.string == "~" || scalar.string == "") {
            return .null
        }
        guard var text = scalar.string else { return .null }
        if modifiers.contains("exists") {
            guard let flag = scalar.bool else { throw SigmaError("invalid_detection", "exists takes true or false") }
            return .exists(flag)
        }
        for op in ["lt", "lte", "gt", "gte"] where modifiers.contains(op) {
            guard let number = Double(text) else { throw SigmaError("invalid_detection", "\(op) needs a number, got \(text)") }
            return .compare(op, number)
        }
        if modifiers.contains("cidr") {
            guard let network = IPNetwork(text.contains("/") ? text : text + (text.contains(":") ? "/128" : "/32")) else {
                throw SigmaError("invalid_detection", "cidr value \(text) is not a network")
            }
            return .cidr(network)
        }
        if modifiers.contains("fieldref") {
            guard modifiers.allSatisfy({ $0 == "fieldref" }) else {
                throw SigmaError("unsupported_modifier_combination", "fieldref with other modifiers")
            }
            return .fieldref(text)
        }
        if modifiers.contains("expand") {
            guard let name = text.firstMatchPlaceholder, let values = mapping.placeholders[name] else {
                throw SigmaError("unsupported_placeholder", "expand of \(text): no placeholder values configured")
            }
            // Placeholders are expanded into alternatives joined as a regex-free OR upstream;
            // a single configured value keeps this simple and exact.
            guard values.count == 1 else { throw SigmaError("unsupported_placeholder", "expand of \(text) with several values") }
            text = text.replacingOccurrences(of: "%\(name)%", with: values[0])
        }
        if modifiers.contains("re") {
            var options: NSRegularExpression.Options = []
            if modifiers.contains("i") { options.insert(.caseInsensitive) }
            if modifiers.contains("m") { options.insert(.anchorsMatchLines) }
            if modifiers.contains("s") { options.insert(.dotMatchesLineSeparators) }
            do {
                return .regex(NSRegularExpressionBox(try NSRegularExpression(pattern: text, options: options)))
            } catch {
                throw SigmaError("invalid_regex", "\(text.prefix(80))")
            }
        }
        var cased = modifiers.contains("cased")
        if modifiers.contains("base64") || modifiers.contains("utf16le") || modifiers.contains("utf16be") || modifiers.contains("utf16") || modifiers.contains("wide") {
            guard modifiers.contains("base64") else {
                throw SigmaError("unsupported_modifier_combination", "utf16 encodings are only supported with base64/base64offset")
            }
            text = escape(Data(try encode(text, modifiers: modifiers)).base64EncodedString())  // base64 has no wildcards
            cased = true  // base64 is case sensitive
        }
        // Escapes are resolved first, so a value ending in a backslash stays a backslash when
        // a wildcard is added after it.
        var pattern = Self.compile(text, cased: cased)
        if modifiers.contains("contains") {
            pattern = ["*"] + pattern + ["*"]
        } else if modifiers.contains("startswith") {
            pattern = pattern + ["*"]
        } else if modifiers.contains("endswith") {
            pattern = ["*"] + pattern
        }
        return .text(TextPattern(pattern, cased: cased))
    }

    /// Sigma wildcards: `*`, `?`, and `\` escapes (`\*`, `\?`, `\\`). Escaped wildcards become
    /// private-use scalars so the matcher can tell them from real wildcards.
    static let literalStar: Unicode.Scalar = "\u{F8FF}"
    static let literalQuestion: Unicode.Scalar = "\u{F8FE}"

    /// The UTF-8 of a pattern scalar that is not a wildcard (escaped wildcards as themselves).
    static func literalBytes(_ scalar: Unicode.Scalar) -> [UInt8] {
        Array(String(Character(scalar == literalStar ? "*" : scalar == literalQuestion ? "?" : scalar)).utf8)
    }

    static func asciiLowercased(_ bytes: [UInt8]) -> [UInt8] {
        bytes.map(asciiLowercased)
    }

    /// The byte lower-cased when it is an ASCII capital.
    @inline(__always)
    static func asciiLowercased(_ byte: UInt8) -> UInt8 {
        byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte
    }

    static func compile(_ text: String, cased: Bool) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        var scalars = Array((cased ? text : text.lowercased()).unicodeScalars)
        var i = 0
        while i < scalars.count {
            let c = scalars[i]
            if c == "\\", i + 1 < scalars.count, ["*", "?", "\\"].contains(scalars[i + 1]) {
                let next = scalars[i + 1]
                out.append(next == "*" ? literalStar : next == "?" ? literalQuestion : "\\")
                i += 2
                continue
            }
            out.append(c)
            i += 1
        }
        scalars = out
        return scalars
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "*", with: "\\*").replacingOccurrences(of: "?", with: "\\?")
    }

    static func encode(_ text: String, modifiers: [String]) throws(SigmaError) -> [UInt8] {
        if modifiers.contains("utf16le") || modifiers.contains("wide") {
            return text.utf16.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }
        }
        if modifiers.contains("utf16be") { return text.utf16.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] } }
        if modifiers.contains("utf16") { return [0xFF, 0xFE] + text.utf16.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] } }
        return Array(text.utf8)
    }

    /// The three base64 forms of `bytes` at offsets 0, 1 and 2 of a longer string, with the
    /// characters that depend on neighbouring bytes cut off (as pySigma does).
    static func base64Offsets(_ bytes: [UInt8]) -> [String] {
        (0..<3).map { i in
            let encoded = Array(Data(Array(repeating: UInt8(ascii: " "), count: i) + bytes).base64EncodedString().utf8)
            let start = [0, 2, 3][i]
            let cut = [0, 3, 2][(bytes.count + i) % 3]
            let end = encoded.count - cut
            return start < end ? String(decoding: encoded[start..<end], as: UTF8.self) : ""
        }
    }

    /// Windows command-line dashes: `-`, `/`, en dash, em dash, horizontal bar at the start of
    /// each option.
    static func windash(_ text: String) -> [String] {
        let dashes: [Character] = ["-", "/", "\u{2013}", "\u{2014}", "\u{2015}"]
        let chars = Array(text)
        let positions = chars.indices.filter { i in (chars[i] == "-" || chars[i] == "/") && (i == 0 || chars[i - 1] == " " || chars[i - 1] == "*") }
        guard !positions.isEmpty else { return [text] }
        return dashes.map { dash in
            var copy = chars
            for p in positions { copy[p] = dash }
            return String(copy)
        }
    }

    /// Whether the matcher decides on the field's texts alone (`matches` then is "any text
    /// matches"); null, exists and fieldref look at the value.
    var testsText: Bool {
        switch self {
        case .null, .exists, .fieldref: return false
        default: return true
        }
    }

    func matches(_ field: String, _ event: SigmaEvent) -> Bool {
        switch self {
        case .null:
            guard let value = event.value(field) else { return true }
            if case .null = value { return true }
            return value.scalarText == ""
        case .exists(let flag):
            let value = event.value(field)
            let present: Bool
            if let value, case .null = value { present = false } else { present = value != nil }
            return present == flag
        case .fieldref(let other):
            guard let a = event.value(field)?.scalarText, let b = event.value(other)?.scalarText else { return false }
            return a == b
        default:
            return event.texts(field).contains { matchesText($0) }
        }
    }

    func matchesText(_ text: Text) -> Bool {
        switch self {
        case .text(let pattern):
            return pattern.matches(text)
        case .regex(let box):
            let range = NSRange(text.string.startIndex..., in: text.string)
            return box.regex.firstMatch(in: text.string, options: [], range: range) != nil
        case .cidr(let network):
            return network.contains(text: text.string)
        case .compare(let op, let number):
            guard let value = Double(text.string) else { return false }
            switch op {
            case "lt": return value < number
            case "lte": return value <= number
            case "gt": return value > number
            default: return value >= number
            }
        case .null, .exists, .fieldref:
            return false
        }
    }

    /// Glob with `*`/`?`; escaped wildcards (private-use scalars) match themselves literally.
    static func wildcard(_ pattern: [Unicode.Scalar], _ text: [Unicode.Scalar]) -> Bool {
        var p = 0, t = 0, star = -1, mark = 0
        func same(_ a: Unicode.Scalar, _ b: Unicode.Scalar) -> Bool {
            a == b || (a == literalStar && b == "*") || (a == literalQuestion && b == "?")
        }
        while t < text.count {
            if p < pattern.count, pattern[p] == "?" || (pattern[p] != "*" && same(pattern[p], text[t])) {
                p += 1
                t += 1
            } else if p < pattern.count, pattern[p] == "*" {
                star = p
                mark = t
                p += 1
            } else if star >= 0 {
                p = star + 1
                mark += 1
                t = mark
            } else {
                return false
            }
        }
        while p < pattern.count, pattern[p] == "*" { p += 1 }
        return p == pattern.count
    }
}

/// NSRegularExpression is thread-safe for matching; this box states it to the compiler.
struct NSRegularExpressionBox: @unchecked Sendable {
    let regex: NSRegularExpression
    init(_ regex: NSRegularExpression) { self.regex = regex }
}

extension String {
    /// `%name%` in an expand value.
    var firstMatchPlaceholder: String? {
        guard let start = firstIndex(of: "%") else { return nil }
        let rest = self[index(after: start)...]
        guard let end = rest.firstIndex(of: "%") else { return nil }
        let name = String(rest[..<end])
        return name.isEmpty ? nil : name
    }
}


/// A Sigma text pattern compiled for byte matching: the parts between unescaped `*`, matched in
/// order on lower-cased UTF-8 (or as is when `cased`). Patterns with `?` match scalar by scalar.
struct TextPattern: Sendable {
    /// The parts' bytes one after another: part `i` ends at `ends[i]` (flat, so that matching
    /// reads them through two buffers instead of an array per part).
    let bytes: [UInt8]
    let ends: [Int]
    let anchoredStart: Bool
    let anchoredEnd: Bool
    let cased: Bool
    /// Set when the pattern has a `?`: the scalar glob matcher is used instead.
    let scalars: [Unicode.Scalar]?

    init(_ pattern: [Unicode.Scalar], cased: Bool) {
        self.cased = cased
        if pattern.contains("?") {
            scalars = pattern
            bytes = []
            ends = []
            anchoredStart = true
            anchoredEnd = true
            return
        }
        scalars = nil
        var parts: [[UInt8]] = [[]]
        for scalar in pattern {
            if scalar == "*" {
                parts.append([])
                continue
            }
            parts[parts.count - 1].append(contentsOf: ValueMatcher.literalBytes(scalar))
        }
        anchoredStart = pattern.first != "*"
        anchoredEnd = pattern.last != "*"
        bytes = parts.flatMap { $0 }
        var ends: [Int] = []
        for part in parts { ends.append((ends.last ?? 0) + part.count) }
        self.ends = ends
    }

    /// The parts between wildcards.
    var segments: [[UInt8]] { ends.indices.map { Array(bytes[(($0 == 0) ? 0 : ends[$0 - 1])..<ends[$0]]) } }

    func matches(_ text: Text) -> Bool {
        if let scalars {
            return ValueMatcher.wildcard(scalars, Array((cased ? text.string : text.string.lowercased()).unicodeScalars))
        }
        if cased { return text.raw.withUnsafeBufferPointer(matches(bytes:)) }
        return text.lower.withUnsafeBufferPointer(matches(bytes:))
    }

    /// The match on the subject's bytes (lower-cased unless `cased`), for a pattern without `?`.
    func matches(bytes subject: UnsafeBufferPointer<UInt8>) -> Bool {
        bytes.withUnsafeBufferPointer { bytes in
            ends.withUnsafeBufferPointer { ends in
                let count = ends.count
                func part(_ i: Int) -> UnsafeBufferPointer<UInt8> {
                    UnsafeBufferPointer(rebasing: bytes[(i == 0 ? 0 : ends[i - 1])..<ends[i]])
                }
                if count == 1 {
                    return Self.same(part(0), in: subject, at: 0, whole: true)
                }
                var position = 0
                var end = subject.count
                if anchoredStart {
                    let first = part(0)
                    guard subject.count >= first.count, Self.same(first, in: subject, at: 0) else { return false }
                    position = first.count
                }
                if anchoredEnd {
                    let last = part(count - 1)
                    guard subject.count - position >= last.count, Self.same(last, in: subject, at: subject.count - last.count) else { return false }
                    end = subject.count - last.count
                }
                for i in (anchoredStart ? 1 : 0)..<(anchoredEnd ? count - 1 : count) {
                    let segment = part(i)
                    guard !segment.isEmpty else { continue }
                    guard let found = Self.find(segment, in: subject, from: position, to: end) else { return false }
                    position = found + segment.count
                }
                return position <= end
            }
        }
    }

    /// Whether `haystack` holds `needle` at `offset` (which leaves room for it); with `whole`,
    /// whether it is exactly `needle`.
    static func same(_ needle: UnsafeBufferPointer<UInt8>, in haystack: UnsafeBufferPointer<UInt8>, at offset: Int, whole: Bool = false) -> Bool {
        if whole, haystack.count != needle.count { return false }
        return needle.isEmpty || memcmp(haystack.baseAddress! + offset, needle.baseAddress!, needle.count) == 0
    }

    /// First index of `needle` in `haystack[from..<to]`.
    static func find(_ needle: UnsafeBufferPointer<UInt8>, in haystack: UnsafeBufferPointer<UInt8>, from: Int, to: Int) -> Int? {
        guard to - from >= needle.count, let base = haystack.baseAddress, let nb = needle.baseAddress else { return nil }
        let first = nb[0]
        var i = from
        let last = to - needle.count
        while i <= last {
            // memchr for the first byte, then compare the rest.
            guard let hit = memchr(base + i, Int32(first), last - i + 1) else { return nil }
            let index = base.distance(to: hit.assumingMemoryBound(to: UInt8.self))
            if memcmp(base + index, nb, needle.count) == 0 { return index }
            i = index + 1
        }
        return nil
    }
}
