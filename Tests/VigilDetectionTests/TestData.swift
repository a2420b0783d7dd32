import Foundation

/// Locates the shared test corpus: `$VIGIL_TESTDATA`, else `<repo>/../shared/testdata`.
enum TestData {
    static var root: URL? {
        if let env = ProcessInfo.processInfo.environment["VIGIL_TESTDATA"], !env.isEmpty {
            let url = URL(fileURLWithPath: env)
            return FileManager.default.fileExists(atPath: url.path) ? url : nil
        }
        // …/Tests/VigilDetectionTests/TestData.swift → 3 levels up is the repository.
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let url = repository.appendingPathComponent("../shared/testdata").standardizedFileURL
        if FileManager.default.fileExists(atPath: url.path) { return url }
        // The dev package symlinks this directory; fall back to the usual checkout place.
        let shared = URL(fileURLWithPath: "/work/shared/testdata")
        return FileManager.default.fileExists(atPath: shared.path) ? shared : nil
    }

    static var sigma: URL? {
        guard let url = root?.appendingPathComponent("sigma"), FileManager.default.fileExists(atPath: url.path) else {
            print("SKIP: Sigma test data not found (set VIGIL_TESTDATA)")
            return nil
        }
        return url
    }
}
