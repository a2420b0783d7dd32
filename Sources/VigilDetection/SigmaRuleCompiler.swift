import Foundation
import VigilCore
import VigilQuery

/// Compiles Sigma (specification v2) detection and correlation rules.
struct SigmaRuleCompiler: Sendable {
    let configuration: SigmaMappingConfiguration

    // MARK: - Detection rules

    func compileDetection(_ document: YAMLTree) throws(RuleImportError) -> CompiledRule {
        let header = try SigmaHeader(document)
        guard let logsource = document["logsource"]?.map else { throw RuleImportError(.invalidRule, "missing logsource") }
        func key(_ name: String) -> String? {
            logsource.first(where: { $0.key == name })?.value.string?.lowercased()
        }
        let product = key("product"), category = key("category"), service = key("service")
        guard let mapping = configuration.mapping(product: product, category: category, service: service) else {
            throw RuleImportError(.unknownLogsource, LogsourceMapping.label(product: product, category: category, service: service))
        }
        guard let detection = document["detection"]?.map else { throw RuleImportError(.invalidRule, "missing detection") }
        var searches: [(name: String, predicate: EventPredicate)] = []
        var condition: YAMLTree?
        for (name, value) in detection {
            switch name {
            case "condition": condition = value
            case "timeframe": throw RuleImportError(.conditionSyntax, "timeframe is Sigma v1; use a correlation rule")
            default: searches.append((name, try compileSearch(value, mapping: mapping)))
            }
        }
        let conditions: [String]
        switch condition {
        case .scalar(let text, _)?: conditions = [text]
        case .list?: conditions = condition?.stringList ?? []
        default: throw RuleImportError(.conditionSyntax, "missing condition")
        }
        guard !conditions.isEmpty else { throw RuleImportError(.conditionSyntax, "missing condition") }
        var parsed: [EventPredicate] = []
        for text in conditions {
            var parser = try SigmaConditionParser(text, searches: searches)
            parsed.append(try parser.parse())
        }
        let detectionPredicate = parsed.count == 1 ? parsed[0] : .or(parsed)
        var rule = CompiledRule(
            id: header.id, title: header.title, kind: .stateless, format: .sigma, severity: header.severity,
            tags: header.tags, name: header.name, predicate: .and([mapping.predicate.compiled(), detectionPredicate])
        )
        rule.logsource = mapping
        return rule
    }

    /// One named search: a map (AND of fields), a list (OR of maps or keywords), or a keyword.
    func compileSearch(_ value: YAMLTree, mapping: LogsourceMapping) throws(RuleImportError) -> EventPredicate {
        switch value {
        case .map(let members):
            guard !members.isEmpty else { throw RuleImportError(.invalidRule, "empty search") }
            var children: [EventPredicate] = []
            for (key, value) in members {
                children.append(try compileField(key: key, value: value, mapping: mapping))
            }
            return children.count == 1 ? children[0] : .and(children)
        case .list(let items):
            guard !items.isEmpty else { throw RuleImportError(.invalidRule, "empty search") }
            if items.allSatisfy({ if case .scalar = $0 { return true } else { return false } }) {
                return try compileField(key: "", value: value, mapping: mapping)
            }
            var children: [EventPredicate] = []
            for item in items {
                children.append(try compileSearch(item, mapping: mapping))
            }
            return .or(children)
        case .scalar:
            return try compileField(key: "", value: value, mapping: mapping)
        case .null:
            throw RuleImportError(.invalidRule, "empty search")
        }
    }

    enum Transform: Equatable {
        case wide(bigEndian: Bool, bom: Bool)
        case base64
        case base64offset
        case windash
        case expand
    }

    enum MatchKind: Equatable {
        case equals, contains, startsWith, endsWith, regex, cidr, exists, fieldref
        case compare(ComparisonOperator)
    }

    /// `Field|mod|mod: value(s)`; an empty field name means keywords (any string in the event).
    func compileField(key: String, value: YAMLTree, mapping: LogsourceMapping) throws(RuleImportError) -> EventPredicate {
        let parts = key.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
        let fieldName = parts[0]
        let modifiers = Array(parts.dropFirst())
        let chain = modifiers.joined(separator: "|")
        func unsupported() -> RuleImportError { RuleImportError(.unsupportedModifier, chain) }

        var transforms: [Transform] = []
        var kind = MatchKind.equals
        var kindSet = false
        var requireAll = false
        var caseSensitive = false
        var regexOptions: NSRegularExpression.Options = []
        for modifier in modifiers {
            func setKind(_ k: MatchKind) throws(RuleImportError) {
                guard !kindSet else { throw unsupported() }
                kind = k
                kindSet = true
            }
            switch modifier {
            case "contains": try setKind(.contains)
            case "startswith": try setKind(.startsWith)
            case "endswith": try setKind(.endsWith)
            case "re": try setKind(.regex)
            case "cidr": try setKind(.cidr)
            case "exists": try setKind(.exists)
            case "fieldref": try setKind(.fieldref)
            case "lt": try setKind(.compare(.lt))
            case "lte": try setKind(.compare(.lte))
            case "gt": try setKind(.compare(.gt))
            case "gte": try setKind(.compare(.gte))
            case "all": requireAll = true
            case "cased": caseSensitive = true
            case "i", "m", "s":
                guard kind == .regex else { throw unsupported() }
                regexOptions.insert(modifier == "i" ? .caseInsensitive : modifier == "m" ? .anchorsMatchLines : .dotMatchesLineSeparators)
            case "wide", "utf16le": transforms.append(.wide(bigEndian: false, bom: false))
            case "utf16be": transforms.append(.wide(bigEndian: true, bom: false))
            case "utf16": transforms.append(.wide(bigEndian: false, bom: true))
            case "base64": transforms.append(.base64)
            case "base64offset": transforms.append(.base64offset)
            case "windash": transforms.append(.windash)
            case "expand": transforms.append(.expand)
            default: throw unsupported()
            }
        }
        // UTF-16 text is only meaningful inside base64 (log fields hold text, not bytes).
        for (i, transform) in transforms.enumerated() {
            if case .wide = transform {
                guard i + 1 < transforms.count, transforms[i + 1] == .base64 || transforms[i + 1] == .base64offset else { throw unsupported() }
            }
        }
        switch kind {
        case .regex, .cidr, .exists, .fieldref, .compare:
            if !transforms.isEmpty || caseSensitive && kind != .fieldref { throw unsupported() }
        default: break
        }
        if regexOptions.isEmpty == false, kind != .regex { throw unsupported() }

        let items: [YAMLTree] = value.list ?? [value]
        guard !items.isEmpty else { throw RuleImportError(.invalidValue, "\(key): empty list") }
        let accessor = FieldAccessor(name: fieldName, candidates: mapping.candidatePaths(for: fieldName))
        let isKeyword = fieldName.isEmpty

        switch kind {
        case .exists:
            guard items.count == 1, case .scalar(let text, _) = items[0], ["true", "false"].contains(text.lowercased()), !isKeyword else {
                throw RuleImportError(.invalidValue, "\(key): exists takes true or false")
            }
            return text.lowercased() == "true" ? .exists(accessor) : .not(.exists(accessor))
        case .fieldref:
            guard !isKeyword else { throw unsupported() }
            var children: [EventPredicate] = []
            for item in items {
                guard let other = item.string else { throw RuleImportError(.invalidValue, "\(key): fieldref takes field names") }
                let otherAccessor = FieldAccessor(name: other, candidates: mapping.candidatePaths(for: other))
                children.append(.fieldReference(accessor, otherAccessor, .equals, caseSensitive: caseSensitive))
            }
            return children.count == 1 ? children[0] : requireAll ? .and(children) : .or(children)
        default: break
        }

        var tests: [ValueTest] = []
        var allowsNull = false
        for item in items {
            guard case .scalar(let text, _) = item else {
                if item == .null, kind == .equals, transforms.isEmpty, !isKeyword {
                    allowsNull = true
                    continue
                }
                throw RuleImportError(.invalidValue, "\(key): values must be scalars")
            }
            switch kind {
            case .regex:
                tests.append(.regex(try CompiledRegex(text, options: regexOptions)))
            case .cidr:
                guard let network = IPNetwork(text) else { throw RuleImportError(.invalidValue, "\(key): bad CIDR \(text)") }
                tests.append(.cidr(network))
            case .compare(let op):
                guard let number = Double(text) else { throw RuleImportError(.invalidValue, "\(key): \(text) is not a number") }
                tests.append(.compare(op, number))
            default:
                for tokens in try expandValue(text, transforms: transforms, key: key) {
                    var tokens = tokens
                    let effective = isKeyword && !kindSet ? MatchKind.contains : kind
                    if effective == .contains || effective == .endsWith { tokens.insert(.many, at: 0) }
                    if effective == .contains || effective == .startsWith { tokens.append(.many) }
                    tests.append(.pattern(StringPattern(tokens: tokens, caseSensitive: caseSensitive)))
                }
            }
        }
        var result: [EventPredicate] = []
        if !tests.isEmpty {
            result.append(isKeyword ? .keyword(tests, requireAll: requireAll) : .field(accessor, tests, requireAll: requireAll))
        }
        if allowsNull {
            if requireAll { throw RuleImportError(.invalidValue, "\(key): all with null") }
            result.append(.fieldIsNull(accessor))
        }
        return result.count == 1 ? result[0] : .or(result)
    }

    /// Applies value transforms in modifier order; each may turn one value into several.
    func expandValue(_ text: String, transforms: [Transform], key: String) throws(RuleImportError) -> [[StringPattern.Token]] {
        var raws = [text]
        // `expand` works on the raw text (placeholders may bring their own wildcards).
        if transforms.contains(.expand) {
            var expanded: [String] = []
            for raw in raws { expanded += try expandPlaceholders(raw) }
            raws = expanded
        }
        var values = raws.map(StringPattern.tokens(sigma:))
        var wide: (bigEndian: Bool, bom: Bool)?
        for transform in transforms {
            switch transform {
            case .expand: continue
            case .windash:
                values = values.flatMap(Self.windashVariants)
            case .wide(let bigEndian, let bom):
                wide = (bigEndian, bom)
            case .base64, .base64offset:
                var next: [[StringPattern.Token]] = []
                for tokens in values {
                    guard let plain = Self.plainText(tokens) else {
                        throw RuleImportError(.invalidValue, "\(key): wildcards cannot be base64 encoded")
                    }
                    let bytes = Self.encode(plain, wide: wide)
                    let encoded = transform == .base64 ? [Data(bytes).base64EncodedString()] : Self.base64OffsetVariants(bytes)
                    next += encoded.map { [.literal($0)] }
                }
                values = next
                wide = nil
            }
        }
        return values
    }

    func expandPlaceholders(_ text: String) throws(RuleImportError) -> [String] {
        guard let start = text.firstIndex(of: "%"),
            let end = text[text.index(after: start)...].firstIndex(of: "%")
        else { return [text] }
        let name = String(text[text.index(after: start)..<end])
        guard let values = configuration.placeholders[name], !values.isEmpty else {
            throw RuleImportError(.unconfiguredPlaceholder, name)
        }
        let head = String(text[..<start])
        var out: [String] = []
        for tail in try expandPlaceholders(String(text[text.index(after: end)...])) {
            for value in values { out.append(head + value + tail) }
        }
        return out
    }

    static func plainText(_ tokens: [StringPattern.Token]) -> String? {
        var text = ""
        for token in tokens {
            guard case .literal(let literal) = token else { return nil }
            text += literal
        }
        return text
    }

    static func encode(_ text: String, wide: (bigEndian: Bool, bom: Bool)?) -> [UInt8] {
        guard let wide else { return Array(text.utf8) }
        var bytes: [UInt8] = []
        if wide.bom { bytes += [0xFF, 0xFE] }
        for unit in text.utf16 {
            let hi = UInt8(unit >> 8), lo = UInt8(unit & 0xFF)
            bytes += wide.bigEndian ? [hi, lo] : [lo, hi]
        }
        return bytes
    }

    /// The three base64 forms of `bytes` at offsets 0, 1 and 2 of an enclosing stream, with
    /// the characters that depend on neighbouring bytes removed (Sigma `base64offset`).
    static func base64OffsetVariants(_ bytes: [UInt8]) -> [String] {
        let starts = [0, 2, 3]
        let trims = [0, 3, 2]  // characters dropped from the end, by (count + offset) % 3
        return (0..<3).map { offset in
            let encoded = Array(Data(Array(repeating: 0x20, count: offset) + bytes).base64EncodedString())
            let trim = trims[(bytes.count + offset) % 3]
            let end = encoded.count - trim
            guard starts[offset] < end else { return "" }
            return String(encoded[starts[offset]..<end])
        }
    }

    /// `windash`: a `-` or `/` starting a word after a non-word character is tried as each of
    /// `-`, `/`, en dash, em dash and horizontal bar (all occurrences replaced alike).
    static func windashVariants(_ tokens: [StringPattern.Token]) -> [[StringPattern.Token]] {
        let dashes: [Character] = ["-", "/", "\u{2013}", "\u{2014}", "\u{2015}"]
        return dashes.map { dash in
            var previous: Character? = nil
            var out: [StringPattern.Token] = []
            for (index, token) in tokens.enumerated() {
                guard case .literal(let text) = token else {
                    out.append(token)
                    previous = nil
                    continue
                }
                let characters = Array(text)
                var replaced = ""
                for (i, c) in characters.enumerated() {
                    let before: Character? = i > 0 ? characters[i - 1] : (index > 0 ? previous : nil)
                    let after: Character? = i + 1 < characters.count ? characters[i + 1] : nil
                    let isWordStart = (c == "-" || c == "/") && !(before.map(isWordCharacter) ?? false) && (after.map(isWordCharacter) ?? false)
                    replaced.append(isWordStart ? dash : c)
                }
                previous = characters.last
                out.append(.literal(replaced))
            }
            return out
        }
    }

    static func isWordCharacter(_ c: Character) -> Bool { c.isLetter || c.isNumber || c == "_" }

    // MARK: - Correlation rules

    func compileCorrelation(_ document: YAMLTree, resolve: (String) -> CompiledRule?) throws(RuleImportError) -> CompiledRule {
        let header = try SigmaHeader(document)
        guard let correlation = document["correlation"], case .map = correlation else {
            throw RuleImportError(.invalidRule, "correlation must be a map")
        }
        let knownKeys: Set<String> = ["type", "rules", "group-by", "timespan", "timeframe", "condition", "field", "aliases", "generate"]
        if let unknown = correlation.map?.first(where: { !knownKeys.contains($0.key) }) {
            throw RuleImportError(.unsupportedCorrelation, "key \(unknown.key)")
        }
        guard let type = correlation["type"]?.string else { throw RuleImportError(.invalidRule, "correlation.type missing") }
        guard let ruleRefs = correlation["rules"]?.stringList, !ruleRefs.isEmpty else {
            throw RuleImportError(.invalidRule, "correlation.rules missing")
        }
        var referenced: [CompiledRule] = []
        for ref in ruleRefs {
            guard let rule = resolve(ref) else { throw RuleImportError(.unknownRuleReference, ref) }
            guard rule.kind == .stateless else { throw RuleImportError(.unsupportedCorrelation, "rule \(ref) is not a detection rule") }
            referenced.append(rule)
        }
        let groupBy = correlation["group-by"]?.stringList ?? []
        guard let spanText = (correlation["timespan"] ?? correlation["timeframe"])?.string, let span = Self.parseDuration(spanText) else {
            throw RuleImportError(.invalidRule, "correlation.timespan missing or invalid")
        }
        // aliases: {alias: {rule-name: field}} lets each rule contribute a differently named field.
        var aliases: [String: [String: String]] = [:]
        if let aliasMap = correlation["aliases"]?.map {
            for (alias, perRule) in aliasMap {
                guard let members = perRule.map else { throw RuleImportError(.invalidRule, "correlation.aliases.\(alias)") }
                var fields: [String: String] = [:]
                for (rule, field) in members {
                    guard let field = field.string else { throw RuleImportError(.invalidRule, "correlation.aliases.\(alias)") }
                    fields[rule] = field
                }
                aliases[alias] = fields
            }
        }
        func fieldName(_ field: String, for rule: CompiledRule, ref: String) -> String {
            guard let perRule = aliases[field] else { return field }
            return perRule[ref] ?? rule.name.flatMap { perRule[$0] } ?? perRule[rule.id] ?? field
        }
        let members = zip(referenced, ruleRefs).map { rule, ref in
            WindowAggregation.Member(
                predicate: rule.predicate,
                groupAccessors: groupBy.map { rule.accessor(for: fieldName($0, for: rule, ref: ref)) }
            )
        }
        var conditions: [(ComparisonOperator, Double)] = []
        if let conditionMap = correlation["condition"]?.map {
            for (op, value) in conditionMap {
                guard let comparison = ComparisonOperator(rawValue: op), let number = value.string.flatMap(Double.init) else {
                    throw RuleImportError(.unsupportedCorrelation, "condition \(op)")
                }
                conditions.append((comparison, number))
            }
        } else if correlation["condition"] != nil {
            throw RuleImportError(.unsupportedCorrelation, "condition must be a map")
        }
        let metric: WindowAggregation.Metric
        switch type {
        case "event_count":
            metric = .eventCount
        case "value_count":
            guard let field = correlation["field"]?.string else { throw RuleImportError(.invalidRule, "value_count needs field") }
            metric = .valueCount(zip(referenced, ruleRefs).map { rule, ref in rule.accessor(for: fieldName(field, for: rule, ref: ref)) })
        case "temporal", "temporal_ordered":
            metric = .temporal(ordered: type == "temporal_ordered")
            if conditions.isEmpty { conditions = [(.gte, Double(referenced.count))] }
        default:
            throw RuleImportError(.unsupportedCorrelation, "type \(type)")
        }
        guard !conditions.isEmpty else { throw RuleImportError(.invalidRule, "correlation.condition missing") }
        let aggregation = WindowAggregation(members: members, groupBy: groupBy, timespanMillis: span, metric: metric, conditions: conditions)
        var rule = CompiledRule(
            id: header.id, title: header.title, kind: .correlation, format: .sigma, severity: header.severity,
            tags: header.tags, name: header.name, predicate: .or(referenced.map(\.predicate)), aggregation: aggregation
        )
        rule.correlatedRuleIDs = referenced.map(\.id)
        rule.generatesBaseAlerts = correlation["generate"]?.string?.lowercased() == "true"
        return rule
    }

    /// `30s`, `5m`, `1h`, `2d`, `1w` → milliseconds.
    static func parseDuration(_ text: String) -> Int64? {
        guard let unit = text.last, let number = Int64(text.dropLast()), number > 0 else { return nil }
        let scale: Int64
        switch unit {
        case "s": scale = 1_000
        case "m": scale = 60_000
        case "h": scale = 3_600_000
        case "d": scale = 86_400_000
        case "w": scale = 7 * 86_400_000
        default: return nil
        }
        return number * scale
    }
}

/// The metadata every Sigma rule carries.
struct SigmaHeader {
    let id: String
    let title: String
    let name: String?
    let severity: RuleSeverity
    let tags: [String]

    init(_ document: YAMLTree) throws(RuleImportError) {
        guard let title = document["title"]?.string else { throw RuleImportError(.invalidRule, "missing title") }
        guard let id = document["id"]?.string ?? document["name"]?.string else { throw RuleImportError(.invalidRule, "missing id") }
        self.id = id
        self.title = title
        self.name = document["name"]?.string
        if let level = document["level"]?.string {
            guard let severity = RuleSeverity(rawValue: level.lowercased()) else { throw RuleImportError(.invalidSeverity, level) }
            self.severity = severity
        } else {
            self.severity = .medium
        }
        self.tags = document["tags"]?.stringList ?? []
    }
}
