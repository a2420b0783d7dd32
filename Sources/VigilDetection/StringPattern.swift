/// A Sigma string value compiled for matching: literal text with `*` and `?` wildcards.
///
/// Matching works on UTF-8 bytes of case-folded text (unless `cased`), with fast paths for
/// the shapes almost every rule uses (exact, prefix, suffix, contains).
struct StringPattern: Sendable, Equatable {
    enum Token: Sendable, Equatable {
        case literal(String)
        /// `?`: exactly one character.
        case one
        /// `*`: any run of characters.
        case many
    }

    enum Shape: Sendable, Equatable {
        case exact([UInt8])
        case prefix([UInt8])
        case suffix([UInt8])
        case contains([UInt8])
        case glob([GlobToken])
    }

    enum GlobToken: Sendable, Equatable {
        case literal([UInt8])
        case one
        case many
    }

    let shape: Shape
    let caseSensitive: Bool

    init(tokens: [Token], caseSensitive: Bool) {
        self.caseSensitive = caseSensitive
        var merged: [GlobToken] = []
        for token in tokens {
            switch token {
            case .literal(let text):
                let bytes = Array((caseSensitive ? text : text.lowercased()).utf8)
                if bytes.isEmpty { continue }
                if case .literal(let previous)? = merged.last {
                    merged[merged.count - 1] = .literal(previous + bytes)
                } else {
                    merged.append(.literal(bytes))
                }
            case .one: merged.append(.one)
            case .many:
                if merged.last != .many { merged.append(.many) }
            }
        }
        switch merged.count {
        case 0: shape = .exact([])
        case 1:
            switch merged[0] {
            case .literal(let bytes): shape = .exact(bytes)
            case .many: shape = .contains([])
            case .one: shape = .glob(merged)
            }
        case 2:
            if case .literal(let bytes) = merged[0], merged[1] == .many {
                shape = .prefix(bytes)
            } else if case .literal(let bytes) = merged[1], merged[0] == .many {
                shape = .suffix(bytes)
            } else {
                shape = .glob(merged)
            }
        case 3:
            if merged[0] == .many, merged[2] == .many, case .literal(let bytes) = merged[1] {
                shape = .contains(bytes)
            } else {
                shape = .glob(merged)
            }
        default: shape = .glob(merged)
        }
    }

    /// Parses Sigma escapes: `\*`, `\?` and `\\` are literal; any other backslash is itself.
    static func tokens(sigma text: String) -> [Token] {
        var tokens: [Token] = []
        var literal = ""
        var escaped = false
        func flush() {
            if !literal.isEmpty { tokens.append(.literal(literal)); literal = "" }
        }
        for character in text {
            if escaped {
                escaped = false
                if character == "*" || character == "?" || character == "\\" {
                    literal.append(character)
                    continue
                }
                literal.append("\\")
            }
            switch character {
            case "\\": escaped = true
            case "*": flush(); tokens.append(.many)
            case "?": flush(); tokens.append(.one)
            default: literal.append(character)
            }
        }
        if escaped { literal.append("\\") }
        flush()
        return tokens
    }

    func matches(_ text: String) -> Bool {
        var folded = caseSensitive ? text : text.lowercased()
        return folded.withUTF8 { matches(bytes: $0) }
    }

    func matches(bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        switch shape {
        case .exact(let literal): return bytes.elementsEqual(literal)
        case .prefix(let literal): return bytes.count >= literal.count && bytes.prefix(literal.count).elementsEqual(literal)
        case .suffix(let literal): return bytes.count >= literal.count && bytes.suffix(literal.count).elementsEqual(literal)
        case .contains(let literal): return Self.find(literal, in: bytes, from: 0) != nil
        case .glob(let tokens): return Self.glob(tokens[...], bytes, 0)
        }
    }

    static func find(_ needle: [UInt8], in haystack: UnsafeBufferPointer<UInt8>, from start: Int) -> Int? {
        if needle.isEmpty { return start }
        guard haystack.count - start >= needle.count else { return nil }
        let first = needle[0]
        var i = start
        let last = haystack.count - needle.count
        while i <= last {
            if haystack[i] == first {
                var j = 1
                while j < needle.count, haystack[i + j] == needle[j] { j += 1 }
                if j == needle.count { return i }
            }
            i += 1
        }
        return nil
    }

    /// Length in bytes of the UTF-8 character starting at `index`.
    static func characterLength(_ bytes: UnsafeBufferPointer<UInt8>, _ index: Int) -> Int {
        let lead = bytes[index]
        let length = lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4
        return min(length, bytes.count - index)
    }

    /// Backtracking glob; literals anchor the search so real patterns stay near linear.
    static func glob(_ tokens: ArraySlice<GlobToken>, _ bytes: UnsafeBufferPointer<UInt8>, _ start: Int) -> Bool {
        var position = start
        var index = tokens.startIndex
        while index < tokens.endIndex {
            switch tokens[index] {
            case .literal(let literal):
                guard bytes.count - position >= literal.count else { return false }
                for k in 0..<literal.count where bytes[position + k] != literal[k] { return false }
                position += literal.count
            case .one:
                guard position < bytes.count else { return false }
                position += characterLength(bytes, position)
            case .many:
                let rest = tokens[(index + 1)...]
                if rest.isEmpty { return true }
                var candidate = position
                while candidate <= bytes.count {
                    if case .literal(let literal)? = rest.first {
                        guard let found = find(literal, in: bytes, from: candidate) else { return false }
                        candidate = found
                    }
                    if glob(rest, bytes, candidate) { return true }
                    if candidate == bytes.count { break }
                    candidate += characterLength(bytes, candidate)
                }
                return false
            }
            index += 1
        }
        return position == bytes.count
    }
}
