import Foundation
import Imaging
import TestSupport
import XCTest

/// The `caption` executable's captioning commands against CLI.md, on the committed tiny model: output shapes,
/// the default subcommand, per-image errors, exit statuses, atomic PNG output.
final class CaptionCLITests: CLITestCase {
    static let model = Fixtures.path("captioner/tiny_model")
    static let image = Fixtures.path("captioner/tiny_image.png")

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

    /// The README's first command: the shipped model in weights/, found next to the executable, on a sample.
    func testShippedModelCaptionsTheREADMESample() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let sample = root.appendingPathComponent("samples/scene7.jpg").path
        let r = try caption([sample, "--quiet"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stdout, "\(sample)\tthere is a large yellow star and a large purple cross\n")
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
