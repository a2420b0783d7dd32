import Foundation

/// Loads rules from YAML: Sigma (detection and correlation) or native Vigil rules.
///
/// A rule is loaded completely or refused with a `RuleImportError`; a multi-document Sigma
/// file (rules plus the correlation over them) is loaded as a whole or not at all.
///
/// ```swift
/// let rules = try RuleImporter().importRules(yaml: text)
/// for rule in rules where rule.matches(event) { ... }
/// ```
public struct RuleImporter: Sendable {
    public var configuration: SigmaMappingConfiguration
    /// Refuse native rules whose embedded tests fail (`rule_test_failed: <test name>`).
    public var requirePassingTests: Bool

    public init(configuration: SigmaMappingConfiguration = .default, requirePassingTests: Bool = true) {
        self.configuration = configuration
        self.requirePassingTests = requirePassingTests
    }

    /// Imports every rule in one YAML text.
    ///
    /// - Parameters:
    ///   - yaml: one rule, or several `---`-separated Sigma documents.
    ///   - known: already loaded rules that correlations may refer to (by id or Sigma name).
    /// - Returns: the compiled rules, in document order.
    /// - Throws: `RuleImportError` naming the first reason the text cannot be loaded.
    public func importRules(yaml: String, known: [CompiledRule] = []) throws(RuleImportError) -> [CompiledRule] {
        let documents = try YAMLTree.documents(yaml).filter { $0 != .null }
        guard !documents.isEmpty else { throw RuleImportError(.invalidRule, "no rule in document") }
        let sigma = SigmaRuleCompiler(configuration: configuration)
        var rules: [CompiledRule] = []
        var correlations: [YAMLTree] = []
        for document in documents {
            guard case .map = document else { throw RuleImportError(.invalidRule, "rule must be a map") }
            if document["correlation"] != nil {
                correlations.append(document)
            } else if document["detection"] != nil {
                rules.append(try sigma.compileDetection(document))
            } else if document["query"] != nil {
                let rule = try NativeRuleCompiler().compile(document)
                if requirePassingTests, let failed = rule.runTests().first(where: { !$0.passed }) {
                    throw RuleImportError(.ruleTestFailed, "\(failed.name): expected \(failed.expectedAlerts) alerts, got \(failed.actualAlerts)")
                }
                rules.append(rule)
            } else {
                throw RuleImportError(.invalidRule, "neither Sigma (detection, correlation) nor native (query)")
            }
        }
        for document in correlations {
            let candidates = rules + known
            let correlation = try sigma.compileCorrelation(document) { reference in
                candidates.first { $0.id == reference || $0.name == reference }
            }
            if !correlation.generatesBaseAlerts {
                for index in rules.indices where correlation.correlatedRuleIDs.contains(rules[index].id) {
                    rules[index].generatesAlerts = false
                }
            }
            rules.append(correlation)
        }
        return rules
    }

    /// Imports every `.yml`/`.yaml` file under a directory (recursively, in path order).
    ///
    /// Correlations may refer to rules in other files: files refused for an unknown reference
    /// are retried once after everything else is loaded.
    public func importDirectory(at path: String) -> RuleImportReport {
        let root = URL(fileURLWithPath: path)
        var files: [String] = []
        if let enumerator = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil) {
            for case let url as URL in enumerator where ["yml", "yaml"].contains(url.pathExtension) {
                files.append(url.path)
            }
        }
        files.sort()
        var report = RuleImportReport()
        var retry: [(String, String)] = []
        for file in files {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                report.refusals.append(.init(path: file, error: RuleImportError(.invalidYAML, "unreadable file")))
                continue
            }
            do {
                report.rules += try importRules(yaml: text)
                report.importedFiles += 1
            } catch where error.code == .unknownRuleReference {
                retry.append((file, text))
            } catch {
                report.refusals.append(.init(path: file, error: error))
            }
        }
        for (file, text) in retry {
            do {
                report.rules += try importRules(yaml: text, known: report.rules)
                report.importedFiles += 1
            } catch {
                report.refusals.append(.init(path: file, error: error))
            }
        }
        report.totalFiles = files.count
        return report
    }
}

/// What `importDirectory(at:)` loaded and what it refused, and why.
public struct RuleImportReport: Sendable {
    public struct Refusal: Sendable {
        public var path: String
        public var error: RuleImportError
    }

    public var totalFiles = 0
    public var importedFiles = 0
    public var rules: [CompiledRule] = []
    public var refusals: [Refusal] = []

    /// Refusal counts by reason code (`unknown_logsource`: 312).
    public var refusalsByCode: [String: Int] {
        refusals.reduce(into: [:]) { $0[$1.error.code.rawValue, default: 0] += 1 }
    }

    /// Refusal counts by full reason (`unknown_logsource: product=aws service=cloudtrail`: 57).
    public var refusalsByReason: [String: Int] {
        refusals.reduce(into: [:]) { $0[$1.error.description, default: 0] += 1 }
    }

    /// A plain-text summary, most frequent reasons first.
    public var summary: String {
        let percent = totalFiles == 0 ? 0 : Double(importedFiles) * 100 / Double(totalFiles)
        var lines = ["imported \(importedFiles)/\(totalFiles) files (\(String(format: "%.1f", percent)) %), \(rules.count) rules"]
        for (code, count) in refusalsByCode.sorted(by: { ($1.value, $0.key) < ($0.value, $1.key) }) {
            lines.append("  \(code): \(count)")
        }
        for (reason, count) in refusalsByReason.sorted(by: { ($1.value, $0.key) < ($0.value, $1.key) }) {
            lines.append("    \(count)\t\(reason)")
        }
        return lines.joined(separator: "\n")
    }
}
