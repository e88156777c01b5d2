import CaptionSupport
import Foundation
import NN
import TensorCore
import XCTest
@testable import Video

/// The training loop on a tiny model: it learns, it is reproducible, a resumed run equals an uninterrupted
/// one, and model folders round-trip.
final class TrainerTests: XCTestCase {
    static let generator = MovingObjects(size: 12, frames: 6, objects: 1, patchSize: 6, kind: .shapes, speed: 1...2, seed: 9)
    static let data = VideoDataset.synthetic(generator, indices: 0..<24)

    static func config(_ reconstruction: VideoModelConfig.DecoderKind = .conditional,
                       _ future: VideoModelConfig.DecoderKind = .unconditioned) -> VideoModelConfig {
        VideoModelConfig(frameSize: 12, hiddenSize: 16, embeddingSize: 8, reconstruction: reconstruction, future: future,
                         observedFrames: 3, futureFrames: 3)
    }

    static func options(steps: Int) -> VideoTrainingOptions {
        VideoTrainingOptions(batchSize: 4, steps: steps, learningRate: 3e-3, clipNorm: 50,
                             scheduledSampling: ScheduledSampling(kind: .linear, k: 1, c: 0.02, minimum: 0.5), seed: 3)
    }

    var root: String!
    override func setUpWithError() throws {
        root = NSTemporaryDirectory() + "video-train-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: root) }

    func makeTrainer(steps: Int) throws -> VideoTrainer {
        let model = try VideoAutoencoder(config: Self.config())
        model.initialize(seed: 3)
        return try VideoTrainer(model: model, data: Self.data, options: Self.options(steps: steps))
    }

    func values(_ model: VideoAutoencoder) -> [Float] { Array(UnsafeBufferPointer(start: model.parameters.values, count: model.parameters.count)) }

    func testLearnsAndIsReproducible() throws {
        let a = try makeTrainer(steps: 40), b = try makeTrainer(steps: 40)
        var first = 0.0, last = 0.0
        while !a.isFinished {
            let p = a.step()
            if p.step <= 4 { first += p.losses!.total / 4 }
            if p.step > 36 { last += p.losses!.total / 4 }
            b.step()
        }
        XCTAssertLessThan(last, 0.8 * first, "loss \(first) → \(last)")
        XCTAssertEqual(values(a.model), values(b.model))
    }

    /// `reconstructionWeight` scales the reconstruction decoder's gradient only; the losses stay unweighted.
    func testReconstructionWeightScalesItsGradient() throws {
        let model = try VideoAutoencoder(config: Self.config(.unconditioned, .none))
        model.initialize(seed: 5)
        let batch = Self.data.batch(0..<4, frames: 3)
        func gradients(_ weight: Float) -> (loss: Double, grads: [Float]) {
            var rng = RNG(seed: 1)
            model.parameters.zeroGrads()
            let losses = model.lossAndGradients(batch, feed: TrainingFeed(reconstructionWeight: weight), rng: &rng)
            return (losses.reconstruction!, Array(UnsafeBufferPointer(start: model.parameters.grads, count: model.parameters.count)))
        }
        let one = gradients(1), three = gradients(3)
        XCTAssertEqual(one.loss, three.loss)
        for (a, b) in zip(one.grads, three.grads) { XCTAssertEqual(3 * a, b, accuracy: 1e-5 * max(1, abs(b))) }
    }

    func testResumeContinuesExactly() throws {
        let straight = try makeTrainer(steps: 12)
        while !straight.isFinished { straight.step() }

        let first = try makeTrainer(steps: 12)
        for _ in 0..<7 { first.step() }   // crosses an epoch boundary (6 batches per epoch)
        let checkpoint = root + "/checkpoint.safetensors"
        try first.saveCheckpoint(to: checkpoint)
        let (config, _) = try VideoTrainer.checkpointConfig(checkpoint)
        XCTAssertEqual(config, Self.config())
        let resumed = try makeTrainer(steps: 12)
        try resumed.resume(from: checkpoint)
        XCTAssertEqual(resumed.state, first.state)
        while !resumed.isFinished { resumed.step() }
        XCTAssertEqual(values(resumed.model), values(straight.model))
    }

    func testModelFolderRoundTripAndAnomalyScores() throws {
        let trainer = try makeTrainer(steps: 10)
        while !trainer.isFinished { trainer.step() }
        let errors = VideoEvaluation.sequenceErrors(trainer.model, Self.data, indices: Array(0..<24), batchSize: 5)
        XCTAssertEqual(errors.count, 24)
        let anomaly = AnomalyStatistics(errors: errors, loss: .bce)
        XCTAssertEqual(anomaly.percentiles.count, 101)
        XCTAssertEqual(anomaly.score(anomaly.percentiles[50]).percentile, 50, accuracy: 1e-9)
        XCTAssertEqual(anomaly.score(anomaly.mean + 2 * anomaly.std).z, 2, accuracy: 1e-9)
        XCTAssertEqual(anomaly.score(anomaly.percentiles[100] + 1).percentile, 100)

        try VideoModelFolder.save(trainer.model, anomaly: anomaly, training: nil, to: root + "/model")
        let (loaded, loadedAnomaly) = try VideoModelFolder.load(root + "/model")
        XCTAssertEqual(loaded.config, trainer.model.config)
        XCTAssertEqual(loadedAnomaly, anomaly)
        let batch = Self.data.batch(0..<5, frames: 6)
        XCTAssertEqual(loaded.infer(batch).reconstruction, trainer.model.infer(batch).reconstruction)
        XCTAssertEqual(loaded.infer(batch).code, trainer.model.infer(batch).code)
    }

    func testBadModelFoldersAreOneLineErrors() throws {
        let model = try VideoAutoencoder(config: Self.config())
        try VideoModelFolder.save(model, anomaly: nil, training: nil, to: root + "/m")
        // config.json asking for another architecture than the weights hold
        var text = try String(contentsOfFile: root + "/m/config.json", encoding: .utf8)
        text = text.replacingOccurrences(of: "\"hidden_size\" : 16", with: "\"hidden_size\" : 17")
        try text.write(toFile: root + "/m/config.json", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try VideoModelFolder.load(root + "/m")) { error in
            XCTAssertTrue("\(error)".hasPrefix(root + "/m/model.safetensors: tensor \"encoder.weight_ih_l0\" has shape"), "\(error)")
        }
        try "{\"video\": {\"cell\": \"transformer\"}}".write(toFile: root + "/m/config.json", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try VideoModelFolder.load(root + "/m")) { error in
            XCTAssertTrue("\(error)".hasPrefix(root + "/m/config.json: "), "\(error)")
        }
        XCTAssertThrowsError(try VideoModelFolder.load(root + "/nothing")) { error in
            XCTAssertEqual("\(error)", root + "/nothing: no such model folder")
        }
        try Data("garbage".utf8).write(to: URL(fileURLWithPath: root + "/bad.safetensors"))
        XCTAssertThrowsError(try VideoTrainer.checkpointConfig(root + "/bad.safetensors")) { error in
            XCTAssertTrue("\(error)".hasPrefix(root + "/bad.safetensors: "), "\(error)")
        }
    }

    // MARK: VideoTraining (the whole run, as `caption video train` does it)

    func job(_ out: String, steps: Int, resume: VideoTrainingJob.Resume? = nil) -> VideoTrainingJob {
        var options = Self.options(steps: steps)
        options.checkpointEvery = 5
        return VideoTrainingJob(data: .sequences(Self.data, name: "tiny"), validation: .sequences(Self.data, name: "tiny"),
                                out: root + "/" + out, config: Self.config(), options: options, resume: resume, logEvery: 4)
    }

    func testTrainingRunReportsCheckpointsAndWritesTheModelFolder() throws {
        let training = VideoTraining(job("run", steps: 12))
        var reports: [Int] = [], checkpoints: [Int] = [], validations: [Int] = [], steps = 0, finished = 0
        var started: (step: Int, total: Int, perEpoch: Int)?
        training.onEvent = { event in
            switch event {
            case .started(let step, let total, _, let perEpoch, _, let resumed):
                XCTAssertFalse(resumed)
                started = (step, total, perEpoch)
            case .step: steps += 1
            case .report(let r): reports.append(r.step); XCTAssertTrue(r.loss.isFinite && r.loss > 0)
            case .checkpoint(let step, _): checkpoints.append(step)
            case .validation(let step, _): validations.append(step)
            case .finished: finished += 1
            case .noCheckpoint, .dataLoaded: break
            }
        }
        let result = try training.run()
        XCTAssertEqual(started?.step, 0); XCTAssertEqual(started?.total, 12); XCTAssertEqual(started?.perEpoch, 6)
        XCTAssertEqual(steps, 12)
        XCTAssertEqual(reports, [4, 8, 12])
        XCTAssertEqual(checkpoints, [5, 10, 12])
        XCTAssertEqual(validations, [7, 12], "after each epoch (seen at the next epoch's first step) and at the end")
        XCTAssertEqual(finished, 1)
        XCTAssertEqual(result.steps, 12)
        XCTAssertFalse(result.interrupted)

        // The same weights as stepping a VideoTrainer by hand from the same initialisation.
        let model = try VideoAutoencoder(config: Self.config())
        var options = Self.options(steps: 12)
        options.checkpointEvery = 5
        let trainer = try VideoTrainer(model: model, data: Self.data, options: options)
        trainer.initializeModel()
        while !trainer.isFinished { trainer.step() }
        XCTAssertEqual(values(result.model), values(model))

        let (loaded, anomaly) = try VideoModelFolder.load(root + "/run")
        XCTAssertEqual(values(loaded), values(model))
        XCTAssertEqual(anomaly?.sequences, 24)
        let (config, _) = try VideoTrainer.checkpointConfig(root + "/run/checkpoint.safetensors")
        XCTAssertEqual(config, Self.config())
    }

    func testStoppedAndResumedRunEqualsAnUninterruptedOne() throws {
        let straight = try VideoTraining(job("straight", steps: 12)).run()

        let first = VideoTraining(job("parts", steps: 12))
        var checkpoints: [Int] = []
        first.onEvent = { event in
            if case .step(let p) = event, p.step == 7 { first.requestStop() }  // crosses an epoch boundary
            if case .checkpoint(let step, _) = event { checkpoints.append(step) }
        }
        let stopped = try first.run()
        XCTAssertTrue(stopped.interrupted)
        XCTAssertEqual(stopped.steps, 7)
        XCTAssertEqual(checkpoints, [5, 7], "a stopped run checkpoints its last step")

        let second = VideoTraining(job("parts", steps: 3, resume: .init(steps: 12)))  // options come from the checkpoint
        var resumedAt: Int?
        second.onEvent = { if case .started(let step, _, _, _, _, true) = $0 { resumedAt = step } }
        let resumed = try second.run()
        XCTAssertEqual(resumedAt, 7)
        XCTAssertEqual(resumed.steps, 12)
        XCTAssertEqual(values(resumed.model), values(straight.model))
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: root + "/parts/model.safetensors")),
                       try Data(contentsOf: URL(fileURLWithPath: root + "/straight/model.safetensors")))

        // A resume without a checkpoint says so and starts afresh.
        let fresh = VideoTraining(job("fresh", steps: 2, resume: .init()))
        var noCheckpoint = false
        fresh.onEvent = { if case .noCheckpoint = $0 { noCheckpoint = true } }
        XCTAssertEqual(try fresh.run().steps, 2)
        XCTAssertTrue(noCheckpoint)
    }

    func testTrainingJobProblems() throws {
        var synthetic = job("synthetic", steps: 1)
        synthetic.data = .synthetic(count: 4, seed: 1)
        XCTAssertThrowsError(try VideoTraining(synthetic).run()) { error in
            XCTAssertEqual(error as? CaptionError, .usage("--synthetic makes 64×64 gray frames: use --input pixels --size 64 --channels 1"))
        }
        var features = job("features", steps: 1)
        features.config.input = .features
        XCTAssertThrowsError(try VideoTraining(features).run()) { error in
            XCTAssertEqual(error as? CaptionError, .usage("--input features needs --encoder-weights DIR"))
        }
        var missing = job("missing", steps: 1)
        missing.data = .folder(root + "/nothing")
        XCTAssertThrowsError(try VideoTraining(missing).run()) { error in
            XCTAssertTrue("\(error)".hasPrefix(root + "/nothing: "), "\(error)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/missing"), "nothing written before the data loads")
    }
}
