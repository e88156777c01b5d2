@testable import BatchCaptioning
@testable import CaptionData
@testable import CaptionMetrics
@testable import CaptionSupport
@testable import CaptionTraining
@testable import Captioning
@testable import SyntheticWorld
import Foundation
import NN
import TensorCore
import TestSupport
import Vision
import XCTest

/// The trainer end to end on a tiny synthetic set: exact resume after a (simulated) kill, feature caching that
/// does not change a run, scheduled sampling, errors before training, and a trained folder that `Captioner` and
/// `caption eval` load.
final class TrainerTests: XCTestCase {
    static let dataFolder: String = {
        let folder = NSTemporaryDirectory() + "trainer-tests-\(getpid())"
        var options = ShapesWorld.Options()
        options.imageSize = 32
        options.maxObjects = 2
        let writer = try! ShapesDatasetWriter(world: try! ShapesWorld(options: options), count: 30, seed: 7,
                                              fractions: (0.6, 0.2, 0.2))
        try! writer.write(to: folder)
        return folder
    }()

    var scratch: [String] = []

    override func tearDown() {
        for path in scratch { try? FileManager.default.removeItem(atPath: path) }
        scratch = []
    }

    func tempFolder(_ name: String) -> String {
        let path = NSTemporaryDirectory() + "trainer-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        scratch.append(path)
        return path
    }

    static var tinySpec: ModelSpec {
        var spec = ModelSpec()
        spec.architecture = .compact(CompactNetSpec(channels: [8, 16], strides: [2, 2]))
        spec.imageSize = 32          // 8×8 grid, D = 16
        spec.attentionDim = 16; spec.embedDim = 16; spec.decoderDim = 24; spec.dropout = 0.3
        spec.maxLength = 12
        return spec
    }

    static func tinyOptions(fineTune: Bool) -> TrainingOptions {
        var o = TrainingOptions()
        o.epochs = 2
        o.batchSize = 4
        o.minWordFrequency = 0
        o.learningRate = 3e-3
        o.encoderLearningRate = 1e-3
        o.fineTuneEncoder = fineTune
        o.validationImages = 4
        o.maxCaptionWords = 12
        o.scheduledSampling = ScheduledSampling(kind: .linear, k: 1, c: 0.1, minimum: 0.3)
        o.captionsPerImage = fineTune ? 2 : 0
        return o
    }

    /// (loss, ε, gradient norm) of every step line of a log.
    func steps(_ logPath: String) throws -> [[String: Double]] {
        let text = try String(contentsOfFile: logPath, encoding: .utf8)
        return text.split(separator: "\n").compactMap { line in
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  object["type"] as? String == "step" else { return nil }
            var r: [String: Double] = [:]
            for key in ["step", "loss", "epsilon", "grad_norm", "lr"] { r[key] = (object[key] as? NSNumber)?.doubleValue }
            return r
        }
    }

    func testResumeAfterKillEqualsUninterruptedRun() throws {
        var options = Self.tinyOptions(fineTune: true)
        options.checkpointEverySteps = 3
        let whole = tempFolder("whole")
        let a = try Trainer(data: Self.dataFolder, out: whole, options: options, spec: Self.tinySpec)
        let summaryA = try a.run()
        XCTAssertEqual(summaryA.steps, 2 * a.batches.batchesPerEpoch)

        let killed = tempFolder("killed")
        let b = try Trainer(data: Self.dataFolder, out: killed, options: options, spec: Self.tinySpec)
        b.abortAfterCheckpoint = 3
        XCTAssertThrowsError(try b.run()) { XCTAssertTrue($0 is SimulatedKill) }
        // The killed process got further than its checkpoint only in memory and in the log; the resumed run cuts the
        // log back and repeats from step 3.
        let c = try Trainer.resume(data: Self.dataFolder, out: killed)
        XCTAssertEqual(c.state.step, 3)
        let summaryC = try c.run()
        XCTAssertEqual(summaryC.steps, summaryA.steps)

        let stepsA = try steps(a.logPath), stepsC = try steps(c.logPath)
        XCTAssertEqual(stepsA.count, summaryA.steps)
        XCTAssertEqual(stepsA, stepsC, "per-step losses, ε, gradient norms and learning rates")
        XCTAssertTrue(stepsA.contains { $0["epsilon"]! < 1 }, "the schedule fed model tokens")
        for (x, y) in [(a.model.decoderParameters, c.model.decoderParameters), (a.model.encoder.parameters, c.model.encoder.parameters)] {
            XCTAssertEqual(Array(UnsafeBufferPointer(start: x.values, count: x.count)),
                           Array(UnsafeBufferPointer(start: y.values, count: y.count)))
        }
        // Both folders hold a loadable model.
        for folder in [whole, killed] { XCTAssertNoThrow(try Captioner(modelFolder: folder)) }
    }

    func testFeatureCacheInMemoryOnDiskOrNoneGivesTheSameRun() throws {
        var options = Self.tinyOptions(fineTune: false)
        options.epochs = 1
        options.validationSplit = nil
        var results: [[[String: Double]]] = []
        for (memory, disk) in [(1 << 30, 0), (0, 1 << 30), (0, 0), (20_000, 20_000)] {
            options.cacheMemoryBytes = memory
            options.cacheDiskBytes = disk
            let out = tempFolder("cache")
            let t = try Trainer(data: Self.dataFolder, out: out, options: options, spec: Self.tinySpec)
            _ = try t.run()
            results.append(try steps(t.logPath))
            XCTAssertFalse(FileManager.default.fileExists(atPath: t.trainingFolder + "/features.f32"), "disk cache removed")
        }
        for r in results.dropFirst() { XCTAssertEqual(r, results[0]) }
    }

    func testTeacherForcingSamplingIsThePlainPass() throws {
        let model = try TrainerParityTests.tinyModel()
        var rng = RNG(seed: 3)
        model.decoder.initialize(model.decoderParameters, rng: &rng)
        let features = Tensor.randn([3, 9, 16], rng: &rng)
        let captions = [[18, 3, 4, 5, 19], [18, 7, 19], [18, 1, 2, 3, 4, 5, 19]]
        func logits(_ sampling: TokenSampling?) -> ([Float], [Int]) {
            var r = RNG(seed: 1)
            let ws = DecoderWorkspace()
            let fwd = model.decoder.forward(features: features, captions: captions, lengths: captions.map(\.count),
                                            model.decoderParameters, workspace: ws, training: false, rng: &r, sampling: sampling)
            return (fwd.packedScores.storage, fwd.inputTokens)
        }
        let plain = logits(nil)
        XCTAssertEqual(logits(TokenSampling(teacherForcing: 1)).0, plain.0)
        // ε = 0 with argmax: every input after <start> is the previous step's argmax.
        let (scores, inputs) = logits(TokenSampling(teacherForcing: 0))
        let fwd = { () -> DecoderForward in
            var r = RNG(seed: 1)
            return model.decoder.forward(features: features, captions: captions, lengths: captions.map(\.count),
                                         model.decoderParameters, workspace: DecoderWorkspace(), training: false, rng: &r,
                                         sampling: TokenSampling(teacherForcing: 0))
        }()
        var offset = 0
        for t in 0..<fwd.steps {
            for i in 0..<fwd.stepRows[t] {
                if t == 0 { XCTAssertEqual(inputs[offset + i], 18) } else {
                    let prev = fwd.stepOffsets[t - 1] + i
                    let row = Array(scores[(prev * 20)..<((prev + 1) * 20)])
                    XCTAssertEqual(inputs[offset + i], row.indices.max { row[$0] < row[$1] }!)
                }
            }
            offset += fwd.stepRows[t]
        }
        XCTAssertNotEqual(inputs, plain.1)
    }

    func testSampledTokensFollowTheSoftmax() {
        var rng = RNG(seed: 5)
        let scores: [Float] = [0, log(3), -Float.infinity, 0]  // probabilities 1/5, 3/5, 0, 1/5
        var counts = [0, 0, 0, 0]
        scores.withUnsafeBufferPointer { s in
            for _ in 0..<20_000 { counts[TokenSampling.draw(s.baseAddress!, count: 4, rng: &rng)] += 1 }
        }
        XCTAssertEqual(counts[2], 0)
        XCTAssertEqual(Double(counts[1]) / 20_000, 0.6, accuracy: 0.02)
        XCTAssertEqual(Double(counts[0]) / 20_000, 0.2, accuracy: 0.02)
    }

    func testErrorsComeBeforeTraining() throws {
        // A missing image: one line naming the annotation file and the entry, nothing written.
        let broken = tempFolder("broken")
        try FileManager.default.copyItem(atPath: Self.dataFolder, toPath: broken)
        let train = try CaptionDataset.load(folder: broken, split: "train")
        try FileManager.default.removeItem(atPath: train.images[2].path)
        let out = tempFolder("out")
        XCTAssertThrowsError(try Trainer(data: broken, out: out, options: Self.tinyOptions(fineTune: true), spec: Self.tinySpec)) {
            XCTAssertTrue("\($0)".contains("captions_train.json"), "\($0)")
            XCTAssertTrue("\($0)".contains("image \(train.images[2].id)"), "\($0)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))

        // An image that is not an image: found by the header check, before the first step.
        try Data("not a png".utf8).write(to: URL(fileURLWithPath: train.images[2].path))
        let t = try Trainer(data: broken, out: out, options: Self.tinyOptions(fineTune: true), spec: Self.tinySpec)
        XCTAssertThrowsError(try t.run()) {
            XCTAssertTrue("\($0)".contains(train.images[2].path), "\($0)")
            XCTAssertTrue("\($0)".contains("image \(train.images[2].id)"), "\($0)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: t.checkpointPath))
        XCTAssertFalse(FileManager.default.fileExists(atPath: t.logPath))

        // Resume without a run, and a new run over a stored one.
        XCTAssertThrowsError(try Trainer.resume(data: Self.dataFolder, out: tempFolder("empty"))) {
            XCTAssertTrue("\($0)".contains("no checkpoint"), "\($0)")
        }
        var options = Self.tinyOptions(fineTune: false)
        options.maxSteps = 1
        options.validationSplit = nil
        let done = tempFolder("done")
        _ = try Trainer(data: Self.dataFolder, out: done, options: options, spec: Self.tinySpec).run()
        XCTAssertThrowsError(try Trainer(data: Self.dataFolder, out: done, options: options, spec: Self.tinySpec)) {
            XCTAssertTrue("\($0)".contains("--resume"), "\($0)")
        }
        // Bad option values are usage errors.
        options.batchSize = 0
        XCTAssertThrowsError(try Trainer(data: Self.dataFolder, out: tempFolder("bad"), options: options, spec: Self.tinySpec)) {
            XCTAssertTrue(($0 as? CaptionError)?.kind == .usage)
        }
    }

    /// `--attention-supervision`: the term is logged and pulls the loss; a set without object boxes is refused
    /// before anything is written.
    func testAttentionSupervisionIsLoggedAndNeedsObjectBoxes() throws {
        var options = Self.tinyOptions(fineTune: false)
        options.maxSteps = 3
        options.validationSplit = nil
        options.attentionSupervision = 1
        let out = tempFolder("supervised")
        _ = try Trainer(data: Self.dataFolder, out: out, options: options, spec: Self.tinySpec).run()
        let lines = try String(contentsOfFile: out + "/training/log.jsonl", encoding: .utf8).split(separator: "\n")
        let terms = lines.compactMap { line -> Double? in
            let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            return (object?["attention_supervision"] as? NSNumber)?.doubleValue
        }
        XCTAssertEqual(terms.count, 3)
        XCTAssertTrue(terms.allSatisfy { $0 > 0 }, "\(terms)")

        // The same set with the boxes removed from its annotation file.
        let plain = tempFolder("no-boxes")
        try FileManager.default.copyItem(atPath: Self.dataFolder, toPath: plain)
        let annotations = plain + "/annotations/captions_train.json"
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: annotations))) as! [String: Any]
        json["images"] = (json["images"] as! [[String: Any]]).map { var image = $0; image["objects"] = nil; return image }
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: annotations))
        let refused = tempFolder("refused")
        let t = try Trainer(data: plain, out: refused, options: options, spec: Self.tinySpec)
        XCTAssertThrowsError(try t.run()) {
            XCTAssertTrue(($0 as? CaptionError)?.kind == .usage, "\($0)")
            XCTAssertTrue("\($0)".contains("object boxes"), "\($0)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: t.logPath))
    }

    func testCheckpointOptionsKeepNilFieldsAndReadOlderCheckpoints() throws {
        var o = TrainingOptions()
        o.validationSplit = nil   // nil here, "val" by default: must not come back as the default
        o.maxSteps = 5
        o.fineTuneFrom = "layer2"
        o.clipping = .value(2)
        o.scheduledSampling = ScheduledSampling(kind: .inverseSigmoid, k: 50, minimum: 0.2, sampleModelToken: true)
        let text = try TrainingCheckpoint.encodeAgainstDefaults(o, defaults: TrainingOptions())
        XCTAssertEqual(try TrainingCheckpoint.decodeOverDefaults(text, defaults: TrainingOptions()), o)
        // A checkpoint written before a field existed reads it as the default.
        var object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [String: Any]
        object.removeValue(forKey: "batchNormRecalibration")
        let older = String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self)
        XCTAssertEqual(try TrainingCheckpoint.decodeOverDefaults(older, defaults: TrainingOptions()).batchNormRecalibration,
                       TrainingOptions().batchNormRecalibration)
    }

    func testEvaluationOfATrainedFolder() throws {
        var options = Self.tinyOptions(fineTune: true)
        options.epochs = 1
        let out = tempFolder("eval")
        _ = try Trainer(data: Self.dataFolder, out: out, options: options, spec: Self.tinySpec).run()
        let captioner = try Captioner(modelFolder: out)
        let test = try CaptionDataset.load(folder: Self.dataFolder, split: "test")
        let result = try CaptionEvaluation.run(captioner: captioner, dataset: test, beam: 2, maxLength: 12, batchSize: 4)
        XCTAssertEqual(result.scores.images, test.images.count)
        XCTAssertEqual(result.captions.count, test.images.count)
        let pointing = try XCTUnwrap(result.pointing)
        XCTAssertGreaterThanOrEqual(pointing.accuracy, 0)
        let json = try JSONSerialization.jsonObject(with: Data(result.jsonLine.utf8)) as! [String: Any]
        XCTAssertEqual(Set(json.keys), ["BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "ROUGE-L", "CIDEr-D", "images", "pointing_accuracy"])
    }
}
