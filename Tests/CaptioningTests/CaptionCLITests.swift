import Foundation
import Imaging
import TestSupport
import XCTest

/// The `caption` executable's captioning commands against CLI.md, on the committed tiny model: output shapes,
/// the default subcommand, per-image errors, exit statuses, atomic PNG output.
final class CaptionCLITests: XCTestCase {
    static let model = Fixtures.path("captioner/tiny_model")
    static let image = Fixtures.path("captioner/tiny_image.png")

    /// The `caption` binary next to the test bundle (SwiftPM builds every product before running tests).
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

    var tmp: URL!

    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("caption-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: tmp) }

    func caption(_ args: [String], environment: [String: String] = [:]) throws -> Run {
        guard let exe = Self.executable else { throw XCTSkip("caption executable not found next to the test bundle") }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        var env = ProcessInfo.processInfo.environment
        env["CAPTION_WEIGHTS"] = nil
        for (k, v) in environment { env[k] = v }
        p.environment = env
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Run(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    func testDefaultSubcommandPrintsPathTabCaption() throws {
        let r = try caption([Self.image, "--weights", Self.model])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stdoutLines.count, 1)
        let fields = r.stdoutLines[0].split(separator: "\t", omittingEmptySubsequences: false)
        XCTAssertEqual(fields.count, 2)
        XCTAssertEqual(String(fields[0]), Self.image)
        XCTAssertFalse(fields[1].isEmpty)
        let described = try caption(["describe", Self.image, "--weights", Self.model])
        XCTAssertEqual(described.stdout, r.stdout)
        // CAPTION_WEIGHTS stands in for --weights.
        XCTAssertEqual(try caption([Self.image], environment: ["CAPTION_WEIGHTS": Self.model]).stdout, r.stdout)
    }

    func testJSONLineHasTheContractFields() throws {
        let r = try caption([Self.image, "--weights", Self.model, "--format", "json", "--beam", "1", "--max-length", "5"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdoutLines[0].utf8)) as? [String: Any])
        XCTAssertEqual(object["image"] as? String, Self.image)
        let tokens = try XCTUnwrap(object["tokens"] as? [String])
        XCTAssertEqual(object["caption"] as? String, tokens.joined(separator: " "))
        XCTAssertLessThanOrEqual(tokens.count, 5)
        XCTAssertNotNil(object["log_prob"] as? Double)
    }

    func testSeveralImagesReportEachFailureAndGoOn() throws {
        let missing = tmp.appendingPathComponent("missing.jpg").path
        let corrupt = Fixtures.path("images/bad_truncated.png")
        let r = try caption([Self.image, missing, corrupt, Self.image, "--weights", Self.model, "--quiet"])
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.stdoutLines.count, 2)
        XCTAssertTrue(r.stdoutLines.allSatisfy { $0.hasPrefix(Self.image + "\t") })
        XCTAssertEqual(r.stderrLines.count, 2, r.stderr)
        XCTAssertTrue(r.stderrLines[0].hasPrefix("caption: error: \(missing): "), r.stderr)
        XCTAssertTrue(r.stderrLines[1].hasPrefix("caption: error: \(corrupt): "), r.stderr)
    }

    func testModelAndUsageErrorsAreOneLine() throws {
        let nowhere = tmp.appendingPathComponent("nowhere").path
        var r = try caption([Self.image, "--weights", nowhere])
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.stderr, "caption: error: \(nowhere): no such model folder\n")
        XCTAssertEqual(r.stdout, "")
        r = try caption([Self.image, "--weights", Self.model, "--beam", "0"])
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.stderrLines.count, 1, r.stderr)
        XCTAssertTrue(r.stderr.hasPrefix("caption: error: "), r.stderr)
        XCTAssertTrue(r.stderr.contains("--beam"), r.stderr)
    }

    func testScoreTextAndJSON() throws {
        let text = "a red circle above the square"
        var r = try caption(["score", Self.image, "--caption", text, "--weights", Self.model, "--format", "json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(object["caption"] as? String, text)
        let perToken = try XCTUnwrap(object["token_log_probs"] as? [Double])
        XCTAssertEqual(perToken.count, 7)
        XCTAssertEqual(try XCTUnwrap(object["log_prob"] as? Double), perToken.reduce(0, +), accuracy: 1e-4)
        r = try caption(["score", Self.image, "--caption", "a zebra", "--weights", Self.model])
        XCTAssertEqual(r.status, 0, r.stderr)
        let fields = r.stdout.dropLast().split(separator: "\t")
        XCTAssertEqual(fields.count, 3)
        XCTAssertTrue(fields[2].hasPrefix("a:") && fields[2].contains(" zebra:") && fields[2].contains(" <end>:"), r.stdout)
        XCTAssertTrue(r.stderr.contains("zebra"), "unknown words are named on stderr")
        r = try caption(["score", Self.image, "--caption", "a zebra", "--weights", Self.model, "--quiet"])
        XCTAssertEqual(r.stderr, "")
    }

    func testAttendWritesTheFigureAtomically() throws {
        let out = tmp.appendingPathComponent("att.png").path
        let r = try caption(["attend", Self.image, "--out", out, "--weights", Self.model, "--beam", "1",
                             "--max-length", "6", "--panel-width", "64", "--columns", "4"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let words = try XCTUnwrap(r.stdoutLines.first?.split(separator: "\t").last).split(separator: " ")
        let png = try ImageDecoder().decode(path: out)
        let panels = 1 + words.count, rows = (panels + 3) / 4
        XCTAssertEqual(png.width, 6 + min(4, panels) * (64 + 6))
        XCTAssertEqual(png.height, 6 + rows * (53 + 22 + 6))  // 48×40 image → 64×53 panels, 22 px labels
        let files = try FileManager.default.contentsOfDirectory(atPath: tmp.path)
        XCTAssertEqual(files, ["att.png"], "no temporary file left behind")

        let bad = tmp.appendingPathComponent("no/such/dir/att.png").path
        let failed = try caption(["attend", Self.image, "--out", bad, "--weights", Self.model])
        XCTAssertEqual(failed.status, 1)
        XCTAssertEqual(failed.stderrLines.count, 1)
        XCTAssertTrue(failed.stderr.hasPrefix("caption: error: \(bad): "), failed.stderr)
    }
}
