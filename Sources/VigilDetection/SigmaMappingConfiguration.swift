/// How Sigma logsources and field names map onto Vigil's normalized events.
///
/// A Sigma rule names a `logsource` (product / category / service); the engine turns it into
/// an event predicate and decides where each Sigma field is read from. The shipped
/// `SigmaMappingConfiguration.default` covers Windows (Sysmon, Security, System, PowerShell
/// and the other Sigma Windows services), Linux, macOS process/file events, and network
/// sources (firewall, DNS, proxy, web server, Zeek). Rules whose logsource has no entry are
/// refused as `unknown_logsource`.
public struct SigmaMappingConfiguration: Sendable {
    public var logsources: [LogsourceMapping]
    /// Values for `%name%` placeholders used with the `expand` modifier. Rules that use a
    /// placeholder missing here are refused (`unconfigured_placeholder: name`).
    public var placeholders: [String: [String]]

    public init(logsources: [LogsourceMapping], placeholders: [String: [String]] = [:]) {
        self.logsources = logsources
        self.placeholders = placeholders
    }

    /// The entry for a logsource: the one whose product, category and service all equal the
    /// rule's (an absent key matches only an absent key).
    public func mapping(product: String?, category: String?, service: String?) -> LogsourceMapping? {
        logsources.first { $0.product == product && $0.category == category && $0.service == service }
    }
}

/// One Sigma logsource and how to evaluate rules written for it.
public struct LogsourceMapping: Sendable {
    public var product: String?
    public var category: String?
    public var service: String?
    /// Events of this logsource: any alternative whose conditions all hold.
    public var predicate: LogsourcePredicate
    /// Prefixes under which the source keeps its raw fields verbatim, tried first
    /// (`winlog.event_data.` for Windows, `zeek.dns.` for Zeek DNS).
    public var rawFieldPrefixes: [String]
    /// Sigma field → normalized (ECS) paths, tried after the raw prefixes and before the
    /// literal Sigma name.
    public var fields: [String: [String]]

    public init(
        product: String? = nil, category: String? = nil, service: String? = nil,
        predicate: LogsourcePredicate, rawFieldPrefixes: [String] = [], fields: [String: [String]] = [:]
    ) {
        self.product = product
        self.category = category
        self.service = service
        self.predicate = predicate
        self.rawFieldPrefixes = rawFieldPrefixes
        self.fields = fields
    }

    /// Where a Sigma field is read from, in order.
    public func candidatePaths(for field: String) -> [String] {
        rawFieldPrefixes.map { $0 + field } + (fields[field] ?? []) + [field]
    }

    /// `product=windows category=process_creation` (absent keys omitted).
    public var label: String {
        LogsourceMapping.label(product: product, category: category, service: service)
    }

    static func label(product: String?, category: String?, service: String?) -> String {
        [("product", product), ("category", category), ("service", service)]
            .compactMap { key, value in value.map { "\(key)=\($0)" } }
            .joined(separator: " ")
    }
}

/// A disjunction of conjunctions of field conditions.
public struct LogsourcePredicate: Sendable {
    public var alternatives: [[FieldCondition]]

    public init(_ alternatives: [[FieldCondition]]) { self.alternatives = alternatives }

    /// Every event.
    public static let any = LogsourcePredicate([[]])

    public static func anyOf(_ alternatives: LogsourcePredicate...) -> LogsourcePredicate {
        LogsourcePredicate(alternatives.flatMap(\.alternatives))
    }
}

/// A condition on one event field, compared case-insensitively through its scalar text.
public struct FieldCondition: Sendable {
    public enum Test: Sendable {
        case equalsAny([String])
        case hasPrefix(String)
        case exists
    }

    public var field: String
    public var test: Test

    public init(_ field: String, _ test: Test) {
        self.field = field
        self.test = test
    }

    public static func equals(_ field: String, _ values: String...) -> FieldCondition {
        FieldCondition(field, .equalsAny(values))
    }
}

extension LogsourcePredicate {
    func compiled() -> EventPredicate {
        .or(alternatives.map { conditions in
            .and(conditions.map { condition in
                let accessor = FieldAccessor(literal: condition.field)
                switch condition.test {
                case .exists: return .exists(accessor)
                case .equalsAny(let values):
                    return .field(accessor, values.map { .pattern(StringPattern(tokens: [.literal($0)], caseSensitive: false)) }, requireAll: false)
                case .hasPrefix(let prefix):
                    return .field(accessor, [.pattern(StringPattern(tokens: [.literal(prefix), .many], caseSensitive: false))], requireAll: false)
                }
            })
        })
    }
}
