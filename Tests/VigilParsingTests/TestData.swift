import Foundation
import VigilCore

/// Locates `../shared/testdata` (or `VIGIL_TESTDATA`); nil when absent (a bare clone).
enum TestData {
    static var root: URL? {
        if let env = ProcessInfo.processInfo.environment["VIGIL_TESTDATA"], !env.isEmpty {
            return URL(fileURLWithPath: env)
        }
        let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let candidates = [
            packageRoot.appendingPathComponent("../shared/testdata").standardized,
            URL(fileURLWithPath: "/work/shared/testdata"),
        ]
        return candidates.first { FileManager.default.fileExists(atPath: $0.path) }
    }

    static func lines(_ url: URL) -> [String] {
        guard let text = try? String(contentsOf: url, encoding: .utf8) else { return [] }
        return text.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
    }

    /// `gzip -dc` through Foundation's Process.
    static func gunzip(_ url: URL) -> String? {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["gzip", "-dc", url.path]
        let pipe = Pipe()
        p.standardOutput = pipe
        do { try p.run() } catch { return nil }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }
}
