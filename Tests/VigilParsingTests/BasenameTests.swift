import Testing
@testable import VigilParsing

struct BasenameTests {
    @Test func basenameAgreesWithSplittingOnSeparators() {
        let pieces = ["C:", "\\", "/", "Windows", "système", "cmd.exe", "", "🙂", "a\u{301}"]
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<3_000 {
            let path = (0..<Int.random(in: 0..<7, using: &generator)).map { _ in pieces.randomElement(using: &generator)! }.joined()
            let expected = String(path.split(whereSeparator: { $0 == "\\" || $0 == "/" }).last ?? Substring(path))
            #expect(WindowsEventPack.basename(path) == expected, "\(path.debugDescription)")
        }
        #expect(WindowsEventPack.basename(#"C:\Windows\System32\cmd.exe"#) == "cmd.exe")
    }

    /// The registry cuts by byte agree with `split` on backslashes (leading, trailing and
    /// repeated ones included), and file directories and extensions with `Character` search.
    @Test func registryPartsAgreeWithSplittingOnBackslashes() {
        let pieces = ["HKLM", "\\", "\\\\", "SOFTWARE", "système", "", "🙂", "a\u{301}", "Run", "/"]
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<3_000 {
            let path = (0..<Int.random(in: 0..<7, using: &generator)).map { _ in pieces.randomElement(using: &generator)! }.joined()
            let parts = path.split(separator: "\\", maxSplits: 1)
            let found = WindowsEventPack.registryHiveAndKey(path)
            #expect(found?.0 == (parts.count == 2 ? String(parts[0]) : nil), "\(path.debugDescription)")
            #expect(found?.1 == (parts.count == 2 ? String(parts[1]) : nil), "\(path.debugDescription)")
            #expect(WindowsEventPack.lastRegistryPart(path) == path.split(separator: "\\").last.map(String.init), "\(path.debugDescription)")
        }
        #expect(WindowsEventPack.registryHiveAndKey(#"HKLM\SOFTWARE\Run"#)! == ("HKLM", #"SOFTWARE\Run"#))
        #expect(WindowsEventPack.lastRegistryPart(#"HKLM\SOFTWARE\Run\"#) == "Run")
    }
}
