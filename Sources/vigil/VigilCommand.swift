import ArgumentParser
import Foundation

@main
struct VigilCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vigil",
        abstract: "Vigil: a SIEM in one binary. Collects, stores, searches and guards security logs.",
        subcommands: [Serve.self, Tenants.self, Search.self, Rules.self, Retention.self, Gates.self, Bench.self, Validate.self]
    )
}

/// `vigil validate <file>`: checks a settings file and lists every problem.
struct Validate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Check a settings file and list every problem in it.")

    @Argument(help: "A JSON settings file.") var file: String

    func run() throws {
        do {
            _ = try Settings.resolve(file: file, environment: [:], flags: [:])
            print("\(file): ok")
        } catch let problems as Settings.Problems {
            FileHandle.standardError.write(Data((problems.description + "\n").utf8))
            throw ExitCode(1)
        }
    }
}
