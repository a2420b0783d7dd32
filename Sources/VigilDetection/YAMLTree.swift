import Foundation
import VigilCore
import Yams

/// A YAML document reduced to what rules use: ordered maps, lists, and scalars that keep
/// their source text (so `EventID: 0x10` or `1.10` are matched as written, not reformatted).
indirect enum YAMLTree: Sendable, Equatable {
    case null
    /// A scalar's text and, for plain (unquoted) scalars, its resolved YAML type.
    case scalar(String, ScalarKind)
    case list([YAMLTree])
    case map([(key: String, value: YAMLTree)])

    enum ScalarKind: Sendable, Equatable { case string, int, float, bool }

    static func == (lhs: YAMLTree, rhs: YAMLTree) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case let (.scalar(a, k), .scalar(b, l)): return a == b && k == l
        case let (.list(a), .list(b)): return a == b
        case let (.map(a), .map(b)): return a.count == b.count && zip(a, b).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        default: return false
        }
    }

    /// Parses every document of a YAML stream (`---` separated).
    static func documents(_ text: String) throws(RuleImportError) -> [YAMLTree] {
        do {
            var result: [YAMLTree] = []
            for node in try Yams.compose_all(yaml: text) {
                result.append(YAMLTree(node))
            }
            return result
        } catch let error as YamlError {
            throw RuleImportError(.invalidYAML, Self.shortDescription(error))
        } catch {
            throw RuleImportError(.invalidYAML, "unreadable YAML")
        }
    }

    private static func shortDescription(_ error: YamlError) -> String {
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _):
            return "\(problem) at line \(mark.line)"
        case .composer(_, let problem, let mark, _):
            return "\(problem) at line \(mark.line)"
        default:
            return "unreadable YAML"
        }
    }

    init(_ node: Node) {
        switch node {
        case .scalar(let scalar):
            let tagName = node.tag.rawValue
            if tagName == Tag.Name.null.rawValue {
                self = .null
                return
            }
            let kind: ScalarKind
            switch tagName {
            case Tag.Name.int.rawValue: kind = .int
            case Tag.Name.float.rawValue: kind = .float
            case Tag.Name.bool.rawValue: kind = .bool
            default: kind = .string
            }
            self = .scalar(scalar.string, kind)
        case .sequence(let sequence):
            self = .list(sequence.map(YAMLTree.init))
        case .mapping(let mapping):
            self = .map(mapping.map { (key: $0.key.string ?? "", value: YAMLTree($0.value)) })
        case .alias:
            self = .null
        }
    }

    subscript(key: String) -> YAMLTree? {
        guard case .map(let members) = self else { return nil }
        return members.first(where: { $0.key == key })?.value
    }

    var string: String? {
        if case .scalar(let text, _) = self { return text }
        return nil
    }

    var list: [YAMLTree]? {
        if case .list(let items) = self { return items }
        return nil
    }

    var map: [(key: String, value: YAMLTree)]? {
        if case .map(let members) = self { return members }
        return nil
    }

    /// A scalar or a list of scalars as strings (tags, group-by lists).
    var stringList: [String]? {
        switch self {
        case .scalar(let text, _): return [text]
        case .list(let items):
            var out: [String] = []
            for item in items {
                guard let text = item.string else { return nil }
                out.append(text)
            }
            return out
        default: return nil
        }
    }

    /// Converts to JSON the way a YAML reader would (plain `5` is a number, `'5'` a string).
    var json: JSONValue {
        switch self {
        case .null: return .null
        case .scalar(let text, let kind):
            switch kind {
            case .string: return .string(text)
            case .int: return Int64(text).map(JSONValue.int) ?? .string(text)
            case .float: return Double(text).map(JSONValue.double) ?? .string(text)
            case .bool: return .bool(["true", "yes", "on"].contains(text.lowercased()))
            }
        case .list(let items): return .array(items.map(\.json))
        case .map(let members): return .object(JSONObject(members.map { ($0.key, $0.value.json) }))
        }
    }
}
