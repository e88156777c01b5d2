import Foundation
import XCTest

/// Runs the `caption` executable that SwiftPM builds next to the test bundle (`swift test` builds every product
/// before the tests run), with `CAPTION_WEIGHTS` cleared so that only `--weights` picks the model.
enum CLIRunner {
    /// Folders searched for the executable: the test bundle's own and the two above it.
    static let searched: [URL] = {
        let candidates = [Bundle.main.executableURL, URL(fileURLWithPath: CommandLine.arguments[0])]
            .compactMap { $0?.resolvingSymlinksInPath().deletingLastPathComponent() }
        var dirs: [URL] = []
        for c in candidates {
            for d in [c, c.deletingLastPathComponent(), c.deletingLastPathComponent().deletingLastPathComponent()] where !dirs.contains(d) {
                dirs.append(d)
            }
        }
        return dirs
    }()

    static let executable: String? = executable(named: "caption")

    /// The package's executable `name` (`caption`, `caption-example`) built beside the tests, if there is one.
    static func executable(named name: String) -> String? {
        searched.map { $0.appendingPathComponent(name).path }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Thrown (so the test fails, never skips) when there is no executable to run.
    struct MissingExecutable: Error, CustomStringConvertible {
        var name = "caption"
        var description: String {
            "the \(name) executable was not found in " + CLIRunner.searched.map(\.path).joined(separator: ", ")
                + "; `swift test` builds it before the tests (or run `swift build -c release --product \(name)`)"
        }
    }

    struct Run {
        let status: Int32
        let stdout: String
        let stderr: String
        var stdoutLines: [String] { stdout.split(separator: "\n").map(String.init) }
        var stderrLines: [String] { stderr.split(separator: "\n").map(String.init) }
    }

    /// The configured process, not started (for tests that signal it midway).
    static func process(_ args: [String], environment: [String: String] = [:], program: String = "caption") throws -> Process {
        guard let exe = program == "caption" ? executable : executable(named: program) else {
            throw MissingExecutable(name: program)
        }
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
    static func run(_ args: [String], environment: [String: String] = [:], program: String = "caption") throws -> Run {
        let p = try process(args, environment: environment, program: program)
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        // Both pipes are drained at once: a child filling one while the other is read would block forever.
        final class Box: @unchecked Sendable { var data = Data() }
        let o = Box(), reading = DispatchGroup()
        DispatchQueue.global().async(group: reading) { o.data = out.fileHandleForReading.readDataToEndOfFile() }
        let e = err.fileHandleForReading.readDataToEndOfFile()
        reading.wait()
        p.waitUntilExit()
        return Run(status: p.terminationStatus, stdout: String(decoding: o.data, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }
}

/// A CLI test with a fresh temporary folder per test, removed afterwards.
class CLITestCase: XCTestCase {
    var tmp: URL!

    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("caption-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: tmp) }

    /// The absolute path of `relative` inside the temporary folder.
    func path(_ relative: String) -> String { tmp.appendingPathComponent(relative).path }

    /// Runs `caption ARGS...` (see `CLIRunner.run`).
    func caption(_ args: [String], environment: [String: String] = [:]) throws -> CLIRunner.Run {
        try CLIRunner.run(args, environment: environment)
    }

    /// Runs `caption ARGS...` and asserts it succeeded, returning its stdout parsed as one JSON object.
    @discardableResult
    func captionJSON(_ args: [String], file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        let r = try caption(args)
        XCTAssertEqual(r.status, 0, "caption \(args.joined(separator: " ")): \(r.stderr)", file: file, line: line)
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any],
                             "not one JSON object: \(r.stdout)", file: file, line: line)
    }

    /// A JSON file's top-level value.
    func readJSON(_ path: String) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path)))
    }

    /// Writes a tiny shapes set (32×32 scenes) with `caption synth shapes` into `relative`; returns its path.
    @discardableResult
    func synthShapes(_ relative: String, count: Int = 12, seed: Int = 5, _ extra: [String] = [],
                     file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let out = path(relative)
        try captionJSON(["synth", "shapes", "--out", out, "--count", "\(count)", "--size", "32", "--seed", "\(seed)", "--quiet"] + extra,
                        file: file, line: line)
        return out
    }

    /// The contract for what cannot be done: exit 1, nothing on stdout, and exactly one stderr line
    /// `caption: error: <file>: <problem>` naming `file`.
    func assertFails(_ r: CLIRunner.Run, naming file: String, _ label: String = "", sourceFile: StaticString = #filePath,
                     line: UInt = #line) {
        XCTAssertEqual(r.status, 1, "\(label): \(r.stderr)", file: sourceFile, line: line)
        XCTAssertEqual(r.stdout, "", label, file: sourceFile, line: line)
        XCTAssertEqual(r.stderrLines.count, 1, "\(label): one line: \(r.stderr)", file: sourceFile, line: line)
        XCTAssertTrue(r.stderr.hasPrefix("caption: error: \(file): ") && r.stderr.hasSuffix("\n"),
                      "\(label): \(r.stderr)", file: sourceFile, line: line)
        let problem = r.stderr.dropFirst("caption: error: \(file): ".count).trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertFalse(problem.isEmpty, "\(label): the problem is named", file: sourceFile, line: line)
    }

    /// Asserts nothing exists at `relative` (a failed command leaves no partial output).
    func assertAbsent(_ relative: String, _ label: String = "", file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertFalse(FileManager.default.fileExists(atPath: path(relative)), "\(label): \(relative) was left behind",
                       file: file, line: line)
    }
}
