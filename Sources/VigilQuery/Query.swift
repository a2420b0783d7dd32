import VigilCore

/// A parsed search query. The planner of each store turns it into its own SQL; callers never
/// supply SQL, tenant predicates or time bounds.
public indirect enum QueryNode: Sendable, Equatable {
    /// `*`: every event.
    case all
    /// A free-text term matched on the token index of `message`.
    case term(String)
    /// A free-text phrase (`"failed password"`).
    case phrase(String)
    /// `field:value` (exact, case-sensitive).
    case fieldEquals(field: String, value: String)
    case and([QueryNode])
}

/// An error in a query, naming where it happened and what was expected.
public struct QuerySyntaxError: Error, Sendable, Equatable, CustomStringConvertible {
    public var offset: Int
    public var expected: String

    public init(offset: Int, expected: String) {
        self.offset = offset
        self.expected = expected
    }

    public var description: String { "query syntax error at offset \(offset): expected \(expected)" }
}

/// Parses the search language. This is the foundation subset: `*`, bare terms, `"phrases"`,
/// `field:value` and `field:"value"`, joined by whitespace or `AND`.
public struct QueryParser: Sendable {
    public static let maxQueryBytes = 8 * 1024

    public init() {}

    public func parse(_ text: String) throws(QuerySyntaxError) -> QueryNode {
        let bytes = Array(text.utf8)
        guard bytes.count <= Self.maxQueryBytes else {
            throw QuerySyntaxError(offset: Self.maxQueryBytes, expected: "a query of at most \(Self.maxQueryBytes) bytes")
        }
        var index = 0
        var clauses: [QueryNode] = []
        func skipSpace() { while index < bytes.count, bytes[index] == 0x20 || bytes[index] == 0x09 || bytes[index] == 0x0A { index += 1 } }
        func readQuoted() throws(QuerySyntaxError) -> String {
            let start = index
            index += 1
            var out: [UInt8] = []
            while index < bytes.count {
                let b = bytes[index]
                if b == UInt8(ascii: "\\"), index + 1 < bytes.count {
                    out.append(bytes[index + 1])
                    index += 2
                    continue
                }
                if b == UInt8(ascii: "\"") {
                    index += 1
                    return String(decoding: out, as: UTF8.self)
                }
                out.append(b)
                index += 1
            }
            throw QuerySyntaxError(offset: start, expected: "a closing '\"'")
        }
        func readBare() -> String {
            let start = index
            while index < bytes.count {
                let b = bytes[index]
                if b == 0x20 || b == 0x09 || b == 0x0A || b == UInt8(ascii: "\"") { break }
                if b == UInt8(ascii: ":") { break }
                index += 1
            }
            return String(decoding: bytes[start..<index], as: UTF8.self)
        }
        skipSpace()
        while index < bytes.count {
            let start = index
            if bytes[index] == UInt8(ascii: "\"") {
                let phrase = try readQuoted()
                clauses.append(.phrase(phrase))
            } else {
                let word = readBare()
                if index < bytes.count, bytes[index] == UInt8(ascii: ":") {
                    guard !word.isEmpty else { throw QuerySyntaxError(offset: start, expected: "a field name before ':'") }
                    index += 1
                    guard index < bytes.count, bytes[index] != 0x20 else {
                        throw QuerySyntaxError(offset: index, expected: "a value after '\(word):'")
                    }
                    let value = bytes[index] == UInt8(ascii: "\"") ? try readQuoted() : readBare()
                    guard !value.isEmpty else { throw QuerySyntaxError(offset: index, expected: "a value after '\(word):'") }
                    clauses.append(.fieldEquals(field: word, value: value))
                } else if word == "*" {
                    clauses.append(.all)
                } else if word == "AND" {
                    guard !clauses.isEmpty else { throw QuerySyntaxError(offset: start, expected: "a term before AND") }
                } else if word.isEmpty {
                    throw QuerySyntaxError(offset: index, expected: "a term")
                } else {
                    clauses.append(.term(word))
                }
            }
            skipSpace()
        }
        let meaningful = clauses.filter { $0 != .all }
        switch meaningful.count {
        case 0: return .all
        case 1: return meaningful[0]
        default: return .and(meaningful)
        }
    }
}
