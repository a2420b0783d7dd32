import Foundation
import GRDB
import VigilQuery

/// Tokens as the token index's tokenizer (`unicode61`) cuts them: runs of letters, digits and
/// private-use characters (Unicode categories L*, N*, Co); everything else separates. Where
/// SQLite's older Unicode tables differ, a token here may be finer than SQLite's (a missed
/// match), never coarser (which would make a query fail).
/// `fold` maps a token to its comparison form (case and diacritics removed), used on both
/// sides of the phrase check.
enum FullTextTokens {
    static let separator = "\u{1F}"

    static func isTokenCharacter(_ scalar: Unicode.Scalar) -> Bool {
        let v = scalar.value
        if scalar.isASCII { return isASCIITokenByte(UInt8(v)) }
        // The combining diacritics `remove_diacritics` folds away count as token characters
        // (SQLite's `sqlite3Fts5UnicodeIsdiacritic`); other marks separate.
        if v >= 768, v <= 817 {
            let mask0: UInt32 = 0x0802_9FDF, mask1: UInt32 = 0x0003_61F8
            if v < 768 + 32 ? mask0 & (1 << (v - 768)) != 0 : mask1 & (1 << (v - 768 - 32)) != 0 { return true }
        }
        switch scalar.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter,
             .decimalNumber, .letterNumber, .otherNumber, .privateUse:
            return true
        default:
            return false
        }
    }

    /// The tokens of a text, as substrings of it.
    static func tokens(of text: String) -> [Substring] {
        var tokens: [Substring] = []
        let scalars = text.unicodeScalars
        var start: String.UnicodeScalarView.Index?
        var index = scalars.startIndex
        while index < scalars.endIndex {
            if isTokenCharacter(scalars[index]) {
                if start == nil { start = index }
            } else if let begin = start {
                tokens.append(Substring(scalars[begin..<index]))
                start = nil
            }
            index = scalars.index(after: index)
        }
        if let begin = start { tokens.append(Substring(scalars[begin..<scalars.endIndex])) }
        return tokens
    }

    static func fold(_ token: Substring) -> String {
        if token.utf8.allSatisfy({ $0 < 0x80 }) { return token.lowercased() }
        return token.folding(options: [.caseInsensitive, .diacriticInsensitive], locale: nil)
    }

    /// Whether the folded tokens of `text` contain `phrase` (folded tokens joined by
    /// `separator`) as consecutive tokens; with `prefix`, the last one only has to start with
    /// the phrase's last token.
    static func contains(_ text: String, phrase: [String], prefix: Bool) -> Bool {
        if let answer = asciiContains(text, phrase: phrase, prefix: prefix) { return answer }
        return !phraseStarts(in: tokens(of: text).map(fold), phrase: phrase, prefix: prefix, first: true).isEmpty
    }

    /// An ASCII letter or digit: the ASCII bytes `isTokenCharacter` takes.
    static func isASCIITokenByte(_ byte: UInt8) -> Bool {
        let letter = byte | 0x20
        return (byte >= 0x30 && byte <= 0x39) || (letter >= 0x61 && letter <= 0x7A)
    }

    /// `contains` for an ASCII text and phrase, on the UTF-8 bytes with no token copied: a
    /// phrase query checks every event the token index gives it, most of which are ASCII.
    /// Nil when the text or the phrase is not ASCII.
    static func asciiContains(_ text: String, phrase: [String], prefix: Bool) -> Bool? {
        var wanted: [[UInt8]] = []
        for token in phrase {
            guard token.utf8.allSatisfy({ $0 < 0x80 }) else { return nil }
            wanted.append(Array(token.utf8))
        }
        var text = text
        return text.withUTF8 { bytes in
            asciiTokenRanges(bytes).map { asciiPhraseFound(wanted, prefix: prefix, in: bytes, tokens: $0) }
        }
    }

    /// The tokens of an ASCII text as ranges of its bytes; nil when a byte is not ASCII.
    static func asciiTokenRanges(_ bytes: UnsafeBufferPointer<UInt8>) -> [Range<Int>]? {
        var ranges: [Range<Int>] = []
        ranges.reserveCapacity(64)
        var start = -1
        for i in 0..<bytes.count {
            let byte = bytes[i]
            guard byte < 0x80 else { return nil }
            if isASCIITokenByte(byte) {
                if start < 0 { start = i }
            } else if start >= 0 {
                ranges.append(start..<i)
                start = -1
            }
        }
        if start >= 0 { ranges.append(start..<bytes.count) }
        return ranges
    }

    /// Whether the folded ASCII `phrase` stands as consecutive tokens among the tokens of
    /// `bytes` at `ranges` (`asciiTokenRanges`), compared without case; with `prefix`, its
    /// last token only has to start the token it meets.
    static func asciiPhraseFound(_ phrase: [[UInt8]], prefix: Bool, in bytes: UnsafeBufferPointer<UInt8>, tokens ranges: [Range<Int>]) -> Bool {
        let last = phrase.count - 1
        return phraseStart(tokens: ranges.count, phrase: phrase.count) { token, i in
            let range = ranges[token], want = phrase[i]
            guard i == last && prefix ? range.count >= want.count : range.count == want.count else { return false }
            for j in 0..<want.count {
                var byte = bytes[range.lowerBound + j]
                if byte >= 0x41 && byte <= 0x5A { byte |= 0x20 }
                if byte != want[j] { return false }
            }
            return true
        } != nil
    }

    /// Where the folded `phrase` starts in the folded `tokens` (only the first place with
    /// `first`); with `prefix`, its last token only has to start the token it meets.
    static func phraseStarts(in tokens: [String], phrase: [String], prefix: Bool, first: Bool = false) -> [Int] {
        let last = phrase.count - 1
        var starts: [Int] = []
        var from = 0
        while let start = phraseStart(tokens: tokens.count, phrase: phrase.count, from: from, matching: { token, i in
            i == last && prefix ? tokens[token].hasPrefix(phrase[i]) : tokens[token] == phrase[i]
        }) {
            starts.append(start)
            if first { break }
            from = start + 1
        }
        return starts
    }

    /// The first place from `from` on where `phrase` tokens stand in a row among `tokens`
    /// tokens: `matching(token, i)` says whether token `token` is the phrase's `i`-th. The
    /// scan of `phraseStarts`, for tokens held in other forms.
    static func phraseStart(tokens: Int, phrase: Int, from: Int = 0, matching: (_ token: Int, _ i: Int) -> Bool) -> Int? {
        guard phrase > 0, tokens - phrase >= from else { return nil }
        outer: for start in from...(tokens - phrase) {
            for i in 0..<phrase where !matching(start + i, i) { continue outer }
            return start
        }
        return nil
    }
}

extension FullTextTokens {
    /// The text with every match marked (`\u{1}` before, `\u{2}` after, for `Highlight`):
    /// a phrase or several-token term as one span from its first token to its last, a single
    /// token as itself. Nil when nothing matches.
    static func marked(_ text: String, matches: [TextMatch]) -> String? {
        let scalars = Array(text.unicodeScalars)
        // Token ranges in scalar offsets, and their folded forms.
        var ranges: [Range<Int>] = []
        var start: Int?
        for (i, scalar) in scalars.enumerated() {
            if isTokenCharacter(scalar) {
                if start == nil { start = i }
            } else if let begin = start {
                ranges.append(begin..<i)
                start = nil
            }
        }
        if let begin = start { ranges.append(begin..<scalars.count) }
        let folded = ranges.map { fold(Substring(String(String.UnicodeScalarView(scalars[$0])))) }
        var spans: [Range<Int>] = []
        for match in matches {
            let phrase = tokens(of: match.text).map(fold)
            let prefix: Bool
            if case .prefix = match { prefix = true } else { prefix = false }
            for first in phraseStarts(in: folded, phrase: phrase, prefix: prefix) {
                spans.append(ranges[first].lowerBound..<ranges[first + phrase.count - 1].upperBound)
            }
        }
        guard !spans.isEmpty else { return nil }
        // Overlapping spans merge; touching ones stay apart.
        spans.sort { $0.lowerBound < $1.lowerBound }
        var merged: [Range<Int>] = []
        for span in spans {
            if let previous = merged.last, span.lowerBound < previous.upperBound {
                merged[merged.count - 1] = previous.lowerBound..<max(previous.upperBound, span.upperBound)
            } else {
                merged.append(span)
            }
        }
        var out = String.UnicodeScalarView()
        var position = 0
        for span in merged {
            out.append(contentsOf: scalars[position..<span.lowerBound])
            out.append("\u{1}")
            out.append(contentsOf: scalars[span])
            out.append("\u{2}")
            position = span.upperBound
        }
        out.append(contentsOf: scalars[position...])
        return String(out)
    }
}

extension SQLiteEventStore {
    /// `vigil_phrase(message, folded tokens, prefix)`: see `FullTextTokens.contains`.
    static let phraseFunction = DatabaseFunction("vigil_phrase", argumentCount: 3, pure: true) { values in
        guard let text = String.fromDatabaseValue(values[0]), let spec = String.fromDatabaseValue(values[1]) else { return false }
        let prefix = (Int64.fromDatabaseValue(values[2]) ?? 0) != 0
        let phrase = spec.components(separatedBy: FullTextTokens.separator)
        return FullTextTokens.contains(text, phrase: phrase, prefix: prefix)
    }
}
