import Foundation
import XCTest

/// Runs the `caption` executable that SwiftPM builds next to the test bundle (every product is built before the
/// tests run), with `CAPTION_WEIGHTS` cleared so that only `--weights` picks the model.
enum CLIRunner {
    static let executable: String? = {
        let candidates = [Bundle.main.executableURL, URL(fileURLWithPath: CommandLine.arguments[0])]
            .compactMap { $0?.resolvingSymlinksInPath().deletingLastPathComponent() }
        var dirs: [URL] = []
        for c in candidates { dirs += [c, c.deletingLastPathComponent(), c.deletingLastPathComponent().deletingLastPathComponent()] }
        return dirs.map { $0.appendingPathComponent("caption").path }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }()

    struct Run {
        let status: Int32
        let stdout: String
        let stderr: String
        var stdoutLines: [String] { stdout.split(separator: "\n").map(String.init) }
        var stderrLines: [String] { stderr.split(separator: "\n").map(String.init) }
    }

    /// The configured process, not started (for tests that signal it midway).
    static func process(_ args: [String], environment: [String: String] = [:]) throws -> Process {
        guard let exe = executable else { throw XCTSkip("caption executable not found next to the test bundle") }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        var env = ProcessInfo.processInfo.environment
        env["CAPTION_WEIGHTS"] = nil
        for (k, v) in environment { env[k] = v }
        p.environment = env
        return p
    }

    /// Runs `caption ARGS...` to the end and collects its output.
    static func run(_ args: [String], environment: [String: String] = [:]) throws -> Run {
        let p = try process(args, environment: environment)
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Run(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }
}
