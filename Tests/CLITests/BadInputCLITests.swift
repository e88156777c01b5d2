import Foundation
import TestSupport
import XCTest

/// What cannot be done, command by command: a missing folder or file, malformed JSON, a corrupt frame. Each gives
/// exit status 1, nothing on stdout, the one line `caption: error: <file>: <problem>`, and no output file or folder.
final class BadInputCLITests: CLITestCase {
    static let captioner = Fixtures.path("captioner/tiny_model")
    static let image = Fixtures.path("captioner/tiny_image.png")
    static let refs = Fixtures.path("metrics/captions_val.json")
    static let hyps = Fixtures.path("metrics/results.json")

    /// Writes the first `bytes` bytes of `file` back over it: a JSON document or image cut short.
    func truncate(_ file: String, to bytes: Int) throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: file))
        try data.prefix(bytes).write(to: URL(fileURLWithPath: file))
    }

    /// Copies the folder `from` (absolute) to `relative`; returns the copy's path.
    func copyFolder(_ from: String, to relative: String) throws -> String {
        try FileManager.default.copyItem(atPath: from, toPath: path(relative))
        return path(relative)
    }

    func testMissingFoldersAndFiles() throws {
        let nowhere = path("nowhere"), missing = path("missing.json")
        let cases: [(args: [String], file: String, output: String?)] = [
            (["train", "--data", nowhere, "--out", path("out")], nowhere, "out"),
            (["eval", "--data", nowhere, "--weights", Self.captioner, "--out", path("r.json")], nowhere, "r.json"),
            (["eval", "--data", Fixtures.path("captioner"), "--weights", nowhere], nowhere, nil),
            (["metrics", "--refs", missing, "--hyps", Self.hyps], missing, nil),
            (["metrics", "--refs", Self.refs, "--hyps", missing], missing, nil),
            (["features", path("none.png"), "--out", path("f.safetensors"), "--weights", Self.captioner], path("none.png"), "f.safetensors"),
            (["features", Self.image, "--out", path("f.safetensors"), "--weights", nowhere], nowhere, "f.safetensors"),
            (["video", "train", "--data", nowhere, "--out", path("video")], nowhere, "video"),
            // The shipped weights/video model reads the sequences.
            (["video", "eval", "--data", nowhere, "--out", path("e.json")], nowhere, "e.json"),
            (["video", "encode", nowhere], nowhere, nil),
            (["video", "reconstruct", nowhere, "--out", path("frames")], nowhere, "frames"),
            (["video", "encode", Fixtures.path("video"), "--weights", nowhere], nowhere, nil),
        ]
        for c in cases {
            let label = c.args.prefix(2).joined(separator: " ")
            assertFails(try caption(c.args), naming: c.file, label)
            if let output = c.output { assertAbsent(output, label) }
        }
    }

    /// Annotation, results and model files cut short: the file is named, nothing is written.
    func testMalformedJSON() throws {
        let data = try synthShapes("set")
        let train = data + "/annotations/captions_train.json", test = data + "/annotations/captions_test.json"
        try truncate(train, to: 300)
        try truncate(test, to: 100)
        assertFails(try caption(["train", "--data", data, "--out", path("out"), "--max-steps", "1"]), naming: train, "train")
        assertAbsent("out", "train")
        assertFails(try caption(["eval", "--data", data, "--weights", Self.captioner, "--out", path("r.json")]), naming: test, "eval")
        assertAbsent("r.json", "eval")
        assertFails(try caption(["metrics", "--refs", test, "--hyps", Self.hyps]), naming: test, "metrics --refs")

        let hyps = path("hyps.json")
        try #"[{"image_id": 245497, "caption": "a bird"}, {"image_id": 1"#.write(toFile: hyps, atomically: true, encoding: .utf8)
        assertFails(try caption(["metrics", "--refs", Self.refs, "--hyps", hyps]), naming: hyps, "metrics --hyps")
        try #"{"image_id": 245497, "caption": "a bird"}"#.write(toFile: hyps, atomically: true, encoding: .utf8)
        assertFails(try caption(["metrics", "--refs", Self.refs, "--hyps", hyps]), naming: hyps, "metrics --hyps: not an array")

        let model = try copyFolder(Self.captioner, to: "model")
        try truncate(model + "/config.json", to: 40)
        let image = data + "/images/000001.png"
        assertFails(try caption([image, "--weights", model]), naming: model + "/config.json", "describe")
        assertFails(try caption(["eval", "--data", Fixtures.path("captioner"), "--weights", model, "--out", path("r.json")]),
                    naming: model + "/config.json", "eval --weights")
        assertAbsent("r.json", "eval --weights")
        assertFails(try caption(["features", image, "--weights", model, "--out", path("f.safetensors")]),
                    naming: model + "/config.json", "features")
        assertAbsent("f.safetensors", "features")
    }

    /// A video model folder whose config.json is cut short, and a data folder with a truncated frame.
    func testMalformedVideoInputs() throws {
        let data = path("v")
        XCTAssertEqual(try caption(["video", "synth", "--out", data, "--count", "2", "--quiet"]).status, 0)
        let model = path("model")
        XCTAssertEqual(try caption(["video", "train", "--data", data, "--out", model, "--steps", "1", "--hidden", "4",
                                    "--embedding", "4", "--batch-size", "2", "--quiet"]).status, 0)
        try truncate(model + "/config.json", to: 30)
        let config = model + "/config.json", sequence = data + "/seq_00000"
        assertFails(try caption(["video", "encode", sequence, "--weights", model]), naming: config, "video encode")
        assertFails(try caption(["video", "reconstruct", sequence, "--weights", model, "--out", path("frames")]), naming: config,
                    "video reconstruct")
        assertAbsent("frames", "video reconstruct")
        assertFails(try caption(["video", "eval", "--data", data, "--weights", model, "--out", path("e.json")]), naming: config,
                    "video eval")
        assertAbsent("e.json", "video eval")

        let frame = data + "/seq_00001/frame_03.png"
        try truncate(frame, to: 50)
        assertFails(try caption(["video", "train", "--data", data, "--out", path("again"), "--steps", "1"]), naming: frame,
                    "video train")
        assertAbsent("again", "video train")
    }

    /// synth refuses an output that is a file or a folder with something in it, and leaves it as it was.
    func testSynthKeepsWhatIsAlreadyThere() throws {
        let file = path("taken.json")
        try "{}".write(toFile: file, atomically: true, encoding: .utf8)
        assertFails(try caption(["synth", "shapes", "--out", file, "--count", "3"]), naming: file, "synth shapes onto a file")
        XCTAssertEqual(try String(contentsOfFile: file, encoding: .utf8), "{}")
        let folder = path("full")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try "keep".write(toFile: folder + "/notes.txt", atomically: true, encoding: .utf8)
        for args in [["synth", "shapes", "--out", folder, "--count", "3"], ["video", "synth", "--out", folder, "--count", "1"]] {
            assertFails(try caption(args), naming: folder, args.prefix(2).joined(separator: " "))
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder), ["notes.txt"])
        }
    }
}
