import Foundation
import TestSupport
import XCTest

/// `caption train` and `caption eval` on a tiny synthetic set (12 scenes of 32×32) with a tiny model, a few steps
/// each: the model folder, `--resume` continuing exactly, and eval's JSON against CLI.md.
final class TrainCLITests: CLITestCase {
    /// A two-layer compact CNN and 16-wide decoder: each step takes milliseconds.
    static let tinyModel = ["--image-size", "32", "--encoder-channels", "8,8", "--encoder-strides", "2,2",
                            "--attention-dim", "16", "--embed-dim", "16", "--decoder-dim", "16", "--max-length", "8"]

    /// `caption train` of the tiny model on `data` into `out`, asserting success; returns the JSON summary.
    @discardableResult
    func train(_ data: String, _ out: String, _ extra: [String], file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        try captionJSON(["train", "--data", data, "--out", out, "--quiet"] + extra, file: file, line: line)
    }

    /// The fields of every step record of a training log, wall times left out.
    func steps(_ out: String) throws -> [[String: String]] {
        let text = try String(contentsOfFile: out + "/training/log.jsonl", encoding: .utf8)
        return try text.split(separator: "\n").map { line in
            let record = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            return record.filter { $0.key != "seconds" }.mapValues { "\($0)" }
        }.filter { $0["type"] == "step" }
    }

    func bytes(_ path: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path)) }

    /// 5 steps, then `--resume --max-steps 10` (across the end of the 7-batch epoch and its checkpoint): the same
    /// log and the same model bytes as 10 uninterrupted steps.
    func testResumeContinuesExactlyLikeAnUninterruptedRun() throws {
        let data = try synthShapes("set")
        let options = ["--batch-size", "8", "--val-split", "none", "--seed", "3"] + Self.tinyModel
        let whole = path("whole"), split = path("split")
        let summary = try train(data, whole, options + ["--max-steps", "10"])
        XCTAssertEqual(summary["out"] as? String, whole)
        XCTAssertEqual(summary["steps"] as? Int, 10)
        XCTAssertEqual(summary["epochs"] as? Int, 1, "10 train scenes × 5 captions = 7 batches of 8: one epoch done")
        XCTAssertEqual(summary["interrupted"] as? Bool, false)
        for name in ["config.json", "vocab.json", "encoder.safetensors", "decoder.safetensors", "training/checkpoint.safetensors",
                     "training/log.jsonl"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: whole + "/" + name), name)
        }

        XCTAssertEqual(try train(data, split, options + ["--max-steps", "5"])["steps"] as? Int, 5)
        let resumed = try train(data, split, ["--resume", "--max-steps", "10"])
        XCTAssertEqual(resumed["steps"] as? Int, 10)
        let (a, b) = (try steps(whole), try steps(split))
        XCTAssertEqual(a.count, 10)
        XCTAssertEqual(a, b, "the same batches, losses and gradient norms step by step")
        for name in ["config.json", "vocab.json", "encoder.safetensors", "decoder.safetensors"] {
            XCTAssertEqual(try bytes(whole + "/" + name), try bytes(split + "/" + name), "\(name): the same bytes")
        }

        // The trained folder is a model the captioning commands load.
        let image = data + "/images/000011.png"
        let r = try caption([image, "--weights", whole, "--beam", "1", "--quiet"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.hasPrefix(image + "\t"), r.stdout)
    }

    /// A stored run is continued with its own options, and is not overwritten by a new run.
    func testAStoredRunIsNeitherChangedNorOverwritten() throws {
        let data = try synthShapes("set")
        let out = path("run")
        try train(data, out, ["--batch-size", "8", "--val-split", "none", "--max-steps", "2"] + Self.tinyModel)
        let checkpoint = try bytes(out + "/training/checkpoint.safetensors")
        var r = try caption(["train", "--data", data, "--out", out, "--resume", "--batch-size", "4"])
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.stderrLines.count, 1, r.stderr)
        XCTAssertTrue(r.stderr.hasPrefix("caption: error: ") && r.stderr.contains("--batch-size"), r.stderr)
        r = try caption(["train", "--data", data, "--out", out, "--max-steps", "2"] + Self.tinyModel)
        assertFails(r, naming: out + "/training/checkpoint.safetensors")
        XCTAssertEqual(try bytes(out + "/training/checkpoint.safetensors"), checkpoint, "the stored run is untouched")
    }

    /// With a validation split the summary names the best step; eval prints CLI.md's keys (and pointing accuracy
    /// for a synthetic set), writes the COCO results file, and `caption metrics` on that file agrees with it.
    func testEvalPrintsTheContractJSONAndItsResultsFileScoresTheSame() throws {
        let data = try synthShapes("set")
        let model = path("model")
        let summary = try train(data, model, ["--batch-size", "8", "--max-steps", "3", "--val-beam", "1"] + Self.tinyModel)
        XCTAssertEqual(summary["best_step"] as? Int, 3, "the one validation, at the end, is the best")
        XCTAssertNotNil(summary["best_bleu4"] as? Double)

        let results = path("results.json")
        let scores = try captionJSON(["eval", "--data", data, "--weights", model, "--split", "test", "--beam", "2",
                                      "--out", results, "--quiet"])
        let metricKeys = ["BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "ROUGE-L", "CIDEr-D"]
        for key in metricKeys + ["images", "pointing_accuracy"] { XCTAssertNotNil(scores[key], "\(key) in \(scores.keys.sorted())") }
        for key in metricKeys + ["pointing_accuracy"] {
            let value = try XCTUnwrap(scores[key] as? Double, key)
            XCTAssertTrue(value >= 0 && (key == "CIDEr-D" || value <= 1), "\(key) = \(value) on the 0..1 scale")
        }
        let test = try XCTUnwrap(try readJSON(data + "/annotations/captions_test.json") as? [String: Any])
        let testIDs = try XCTUnwrap(test["images"] as? [[String: Any]]).map { $0["id"] as! Int }
        XCTAssertEqual(scores["images"] as? Int, testIDs.count)

        let written = try XCTUnwrap(try readJSON(results) as? [[String: Any]], "a COCO results file")
        XCTAssertEqual(written.map { $0["image_id"] as? Int }, testIDs.map { $0 })
        XCTAssertTrue(written.allSatisfy { $0["caption"] is String })
        let rescored = try captionJSON(["metrics", "--refs", data + "/annotations/captions_test.json", "--hyps", results])
        for key in metricKeys + ["images"] {
            XCTAssertEqual("\(rescored[key] ?? "missing")", "\(scores[key] ?? "missing")", "\(key): eval and metrics agree")
        }
    }
}
