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
}
