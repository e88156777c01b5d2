import Foundation
import Imaging
import XCTest

/// Every `caption video` subcommand against CLI.md on four synthetic sequences and an 8-wide LSTM autoencoder
/// trained for a few steps: synth's folders, train's model folder and exact `--resume`, encode's JSON, reconstruct's
/// frames, eval's report, and that their numbers agree with each other.
final class VideoCLITests: CLITestCase {
    /// An 8-wide encoder and embedding; the defaults otherwise (T = 10 observed, K = 10 future frames, BCE).
    static let tinyModel = ["--hidden", "8", "--embedding", "8", "--batch-size", "2", "--checkpoint-every", "2",
                            "--anomaly-sequences", "4"]

    /// `caption video synth` of `count` sequences into `relative`; returns the folder.
    @discardableResult
    func synth(_ relative: String, count: Int = 4, seed: Int = 2, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let out = path(relative)
        let summary = try captionJSON(["video", "synth", "--out", out, "--count", "\(count)", "--seed", "\(seed)", "--quiet"],
                                      file: file, line: line)
        XCTAssertEqual(summary["sequences"] as? Int, count, file: file, line: line)
        return out
    }

    /// `caption video train` of the tiny model for `steps` steps; returns its JSON summary.
    @discardableResult
    func train(_ data: String, _ out: String, steps: Int, _ extra: [String] = [], file: StaticString = #filePath,
               line: UInt = #line) throws -> [String: Any] {
        try captionJSON(["video", "train", "--data", data, "--out", out, "--steps", "\(steps)", "--quiet"] + Self.tinyModel + extra,
                        file: file, line: line)
    }

    func bytes(_ path: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path)) }

    /// DIR/seq_NNNNN/frame_NN.png (20 gray 64×64 frames each) and DIR/synth.json; sequence i depends only on the
    /// seed and i.
    func testSynthWritesOneFolderOfFramesPerSequence() throws {
        let root = try synth("v")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: root).sorted(),
                       ["seq_00000", "seq_00001", "seq_00002", "seq_00003", "synth.json"])
        let frames = try FileManager.default.contentsOfDirectory(atPath: root + "/seq_00001").sorted()
        XCTAssertEqual(frames, (0..<20).map { String(format: "frame_%02d.png", $0) })
        let frame = try ImageDecoder().decode(path: root + "/seq_00001/frame_07.png")
        XCTAssertEqual([frame.width, frame.height], [64, 64])
        let gray = (0..<(64 * 64)).allSatisfy { (p: Int) -> Bool in
            let rgb = frame.pixels[(3 * p)..<(3 * p + 3)]
            return rgb.allSatisfy { $0 == rgb.first }
        }
        XCTAssertTrue(gray, "gray frames")
        let settings = try XCTUnwrap(try readJSON(root + "/synth.json") as? [String: Any])
        XCTAssertEqual(settings["seed"] as? Int, 2)
        XCTAssertEqual(settings["frames"] as? Int, 20)
        XCTAssertEqual(settings["size"] as? Int, 64)

        let more = try synth("more", count: 6)
        let other = try synth("other", seed: 3)
        for f in ["frame_00.png", "frame_19.png"] {
            XCTAssertEqual(try bytes(root + "/seq_00002/" + f), try bytes(more + "/seq_00002/" + f), "\(f): the same seed and index")
            XCTAssertNotEqual(try bytes(root + "/seq_00002/" + f), try bytes(other + "/seq_00002/" + f), "\(f): another seed")
        }
    }

    /// 2 steps then `--resume --steps 4` give the bytes of 4 uninterrupted steps (the model and its anomaly
    /// statistics); the folder loads for encode, reconstruct and eval.
    func testTrainWritesAModelFolderAndResumesExactly() throws {
        let data = try synth("v")
        let whole = path("whole"), split = path("split")
        let summary = try train(data, whole, steps: 4)
        XCTAssertEqual(summary["out"] as? String, whole)
        XCTAssertEqual(summary["steps"] as? Int, 4)
        XCTAssertGreaterThan(try XCTUnwrap(summary["parameters"] as? Int), 0)
        XCTAssertEqual((summary["anomaly"] as? [String: Any])?["sequences"] as? Int, 4)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: whole).sorted(),
                       ["anomaly.json", "checkpoint.safetensors", "config.json", "model.safetensors"])

        XCTAssertEqual(try train(data, split, steps: 2)["steps"] as? Int, 2)
        // Resumed with no model flags: the architecture and options come from the checkpoint.
        XCTAssertEqual(try captionJSON(["video", "train", "--data", data, "--out", split, "--resume", "--steps", "4", "--quiet"])["steps"]
                       as? Int, 4)
        for name in ["model.safetensors", "anomaly.json"] {
            XCTAssertEqual(try bytes(whole + "/" + name), try bytes(split + "/" + name), "\(name): the same bytes")
        }
        func withoutWallTime(_ folder: String) throws -> Data {
            var config = try XCTUnwrap(try readJSON(folder + "/config.json") as? [String: Any])
            var training = try XCTUnwrap(config["training"] as? [String: Any])
            XCTAssertEqual(training["steps"] as? Int, 4)
            training["seconds"] = nil
            config["training"] = training
            return try JSONSerialization.data(withJSONObject: config, options: [.sortedKeys])
        }
        XCTAssertEqual(try withoutWallTime(whole), try withoutWallTime(split), "config.json: the same but for the wall time")
    }

    /// encode (json and text), reconstruct and eval of one model: the shapes of CLI.md, and one sequence's
    /// reconstruction error the same in all three.
    func testEncodeReconstructAndEvalAgree() throws {
        let data = try synth("v")
        let model = path("model")
        try train(data, model, steps: 4)
        let sequences = (0..<4).map { data + String(format: "/seq_%05d", $0) }

        let encoded = try caption(["video", "encode"] + sequences + ["--weights", model, "--format", "json"])
        XCTAssertEqual(encoded.status, 0, encoded.stderr)
        XCTAssertEqual(encoded.stdoutLines.count, 4, "one JSON object per sequence")
        var errors: [Double] = []
        for (line, sequence) in zip(encoded.stdoutLines, sequences) {
            let record = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            XCTAssertEqual(Set(record.keys), ["sequence", "frames", "code", "reconstruction_error", "anomaly_score", "anomaly_percentile"])
            XCTAssertEqual(record["sequence"] as? String, sequence)
            XCTAssertEqual(record["frames"] as? Int, 10)
            XCTAssertEqual((record["code"] as? [Double])?.count, 16, "an LSTM's h and c, 8 each")
            XCTAssertNotNil(record["anomaly_score"] as? Double)
            let percentile = try XCTUnwrap(record["anomaly_percentile"] as? Double)
            XCTAssertTrue((0...100).contains(percentile))
            errors.append(try XCTUnwrap(record["reconstruction_error"] as? Double))
        }
        let text = try caption(["video", "encode", sequences[0], "--weights", model])
        XCTAssertEqual(text.status, 0, text.stderr)
        let fields = text.stdout.dropLast().split(separator: "\t", omittingEmptySubsequences: false)
        XCTAssertEqual(fields.count, 5, "SEQ, error, z, percentile, code")
        XCTAssertEqual(String(fields[0]), sequences[0])
        XCTAssertEqual(fields[4].split(separator: " ").count, 16)

        let out = path("rec")
        let rebuilt = try caption(["video", "reconstruct", sequences[2], "--weights", model, "--out", out])
        XCTAssertEqual(rebuilt.status, 0, rebuilt.stderr)
        let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(rebuilt.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(report["loss"] as? String, "bce")
        let reconstruction = try XCTUnwrap(report["reconstruction"] as? [Double])
        XCTAssertEqual(reconstruction.count, 10)
        XCTAssertEqual((report["future"] as? [Double])?.count, 10)
        XCTAssertEqual(reconstruction.reduce(0, +) / 10, errors[2], accuracy: 1e-6 * errors[2], "encode's error is the mean per-frame loss")
        var files = ["strip.png"]
        for prefix in ["input", "reconstruction", "truth", "prediction"] { files += (0..<10).map { String(format: "%@_%02d.png", prefix, $0) } }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out).sorted(), files.sorted(), "the frames and nothing else")
        let frame = try ImageDecoder().decode(path: out + "/prediction_04.png")
        XCTAssertEqual([frame.width, frame.height], [64, 64])

        let written = path("eval.json")
        let eval = try caption(["video", "eval", "--data", data, "--weights", model, "--out", written])
        XCTAssertEqual(eval.status, 0, eval.stderr)
        XCTAssertEqual(try String(contentsOfFile: written, encoding: .utf8), eval.stdout, "--out holds the printed report")
        let scores = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(eval.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(scores["sequences"] as? Int, 4)
        XCTAssertEqual(scores["loss"] as? String, "bce")
        for part in ["reconstruction", "future"] {
            let values = try XCTUnwrap(scores[part] as? [String: Any], part)
            for key in ["model", "copy_last", "mean_frame"] {
                XCTAssertGreaterThan(try XCTUnwrap(values[key] as? Double, "\(part).\(key)"), 0)
            }
        }
        let model0 = try XCTUnwrap((scores["reconstruction"] as? [String: Any])?["model"] as? Double)
        let mean = errors.reduce(0, +) / 4
        XCTAssertEqual(model0, mean, accuracy: 1e-6 * mean, "eval's reconstruction is the mean of the sequences' errors")
    }
}
