import Foundation
/// A tolerant reader for the small XML Windows renders events as (`<Event xmlns=...>`).
/// It handles elements, attributes with either quote, text, entities, comments and the XML
/// declaration; it never throws — a cut document yields what was read so far.
struct XMLElement: Sendable {
    var name: String
    var attributes: [String: String] = [:]
    var children: [XMLElement] = []
    var text = ""

    func child(_ name: String) -> XMLElement? { children.first { $0.name == name } }
}

enum TinyXMLReader {
    static func parse(_ text: String) -> XMLElement? {
        let b = Array(text.utf8)
        var i = 0
        var stack: [XMLElement] = [XMLElement(name: "#root")]
        while i < b.count {
            if b[i] == UInt8(ascii: "<") {
                if i + 1 < b.count, b[i + 1] == UInt8(ascii: "?") || b[i + 1] == UInt8(ascii: "!") {
                    while i < b.count, b[i] != UInt8(ascii: ">") { i += 1 }
                    i += 1
                    continue
                }
                if i + 1 < b.count, b[i + 1] == UInt8(ascii: "/") {
                    while i < b.count, b[i] != UInt8(ascii: ">") { i += 1 }
                    i += 1
                    if stack.count > 1, let done = stack.popLast() { stack[stack.count - 1].children.append(done) }
                    continue
                }
                i += 1
                var name: [UInt8] = []
                while i < b.count, b[i] != 0x20, b[i] != UInt8(ascii: ">"), b[i] != UInt8(ascii: "/"), b[i] != 0x0A, b[i] != 0x09 { name.append(b[i]); i += 1 }
                var element = XMLElement(name: String(decoding: name, as: UTF8.self))
                var selfClosing = false
                while i < b.count, b[i] != UInt8(ascii: ">") {
                    if b[i] == UInt8(ascii: "/") { selfClosing = true; i += 1; continue }
                    if b[i] == 0x20 || b[i] == 0x0A || b[i] == 0x09 || b[i] == 0x0D { i += 1; continue }
                    var key: [UInt8] = []
                    while i < b.count, b[i] != UInt8(ascii: "="), b[i] != UInt8(ascii: ">"), b[i] != 0x20 { key.append(b[i]); i += 1 }
                    guard i < b.count, b[i] == UInt8(ascii: "=") else { continue }
                    i += 1
                    guard i < b.count else { break }
                    let quote = b[i]
                    guard quote == UInt8(ascii: "'") || quote == UInt8(ascii: "\"") else { continue }
                    i += 1
                    var value: [UInt8] = []
                    while i < b.count, b[i] != quote { value.append(b[i]); i += 1 }
                    i += 1
                    element.attributes[String(decoding: key, as: UTF8.self)] = decodeEntities(String(decoding: value, as: UTF8.self))
                    selfClosing = false
                }
                i += 1
                if selfClosing {
                    stack[stack.count - 1].children.append(element)
                } else {
                    stack.append(element)
                }
            } else {
                var t: [UInt8] = []
                while i < b.count, b[i] != UInt8(ascii: "<") { t.append(b[i]); i += 1 }
                stack[stack.count - 1].text += decodeEntities(String(decoding: t, as: UTF8.self))
            }
        }
        while stack.count > 1, let done = stack.popLast() { stack[stack.count - 1].children.append(done) }
        return stack.first?.children.first
    }

    static func decodeEntities(_ s: String) -> String {
        guard s.contains("&") else { return s }
        var out = ""
        var rest = Substring(s)
        while let amp = rest.firstIndex(of: "&") {
            out += rest[..<amp]
            let after = rest[rest.index(after: amp)...]
            guard let semi = after.firstIndex(of: ";"), after.distance(from: after.startIndex, to: semi) <= 10 else {
                out += "&"
                rest = after
                continue
            }
            let entity = after[..<semi]
            switch entity {
            case "lt": out += "<"
            case "gt": out += ">"
            case "amp": out += "&"
            case "quot": out += "\""
            case "apos": out += "'"
            default:
                var scalar: Unicode.Scalar?
                if entity.hasPrefix("#x") { scalar = UInt32(entity.dropFirst(2), radix: 16).flatMap(Unicode.Scalar.init) }
                else if entity.hasPrefix("#") { scalar = UInt32(entity.dropFirst()).flatMap(Unicode.Scalar.init) }
                if let scalar { out.unicodeScalars.append(scalar) } else { out += "&\(entity);" }
            }
            rest = after[after.index(after: semi)...]
        }
        out += rest
        return out
    }
}
