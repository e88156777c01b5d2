import CaptionSupport
import Foundation
import NN
import TensorCore

/// Hyper-parameters of a training run (stored in checkpoints and in the finished model's config.json).
public struct VideoTrainingOptions: Codable, Equatable, Sendable {
    /// Sequences per optimiser step (capped at the dataset's size).
    public var batchSize: Int
    /// Passes over the data; ignored when `steps` is set.
    public var epochs: Int
    /// Total optimiser steps (overrides `epochs`).
    public var steps: Int?
    /// Adam's learning rate (torch semantics, β = (0.9, 0.999), ε = 1e-8).
    public var learningRate: Float
    /// When set, the learning rate follows a cosine from `learningRate` down to this at the last step.
    public var finalLearningRate: Float?
    /// Clip the global gradient norm to this (`clip_grad_norm_`); nil for none.
    public var clipNorm: Float?
    /// The conditional decoders' teacher-forcing schedule (the captioning trainer's schedules).
    public var scheduledSampling: ScheduledSampling
    /// TBPTT (k1, k2); nil for full BPTT.
    public var truncation: [Int]?
    /// Seeds the initial weights, the batch order, the window starts and the scheduled-sampling coins.
    public var seed: UInt64
    /// Write a checkpoint every this many steps (and at the end).
    public var checkpointEvery: Int
    /// Training sequences whose reconstruction errors make the anomaly statistics.
    public var anomalySequences: Int
    /// LSTM forget-gate bias at initialisation (PyTorch's default init gives ≈ 0).
    public var forgetGateBias: Float
    /// Start the readouts at the training data's mean frame (`setOutputBias`).
    public var outputBiasFromData: Bool
    /// Start the readouts' weights at zero (`zeroReadoutWeights`); nil (older checkpoints) is false.
    public var zeroReadout: Bool?
    /// Weight of the reconstruction loss in the composite objective (the future loss has weight 1); nil
    /// (older checkpoints) is 1.
    public var reconstructionWeight: Float?

    /// Options; the defaults are batches of 16 for 10 epochs at learning rate 1e-3, clip norm 100, teacher
    /// forcing, seed 1.
    public init(batchSize: Int = 16, epochs: Int = 10, steps: Int? = nil, learningRate: Float = 1e-3,
                finalLearningRate: Float? = nil, clipNorm: Float? = 100, scheduledSampling: ScheduledSampling = .teacherForcing,
                truncation: [Int]? = nil, seed: UInt64 = 1, checkpointEvery: Int = 500, anomalySequences: Int = 512,
                forgetGateBias: Float = 1, outputBiasFromData: Bool = true, zeroReadout: Bool? = nil,
                reconstructionWeight: Float? = nil) {
        self.batchSize = batchSize
        self.epochs = epochs
        self.steps = steps
        self.learningRate = learningRate
        self.finalLearningRate = finalLearningRate
        self.clipNorm = clipNorm
        self.scheduledSampling = scheduledSampling
        self.truncation = truncation
        self.seed = seed
        self.checkpointEvery = checkpointEvery
        self.anomalySequences = anomalySequences
        self.forgetGateBias = forgetGateBias
        self.outputBiasFromData = outputBiasFromData
        self.zeroReadout = zeroReadout
        self.reconstructionWeight = reconstructionWeight
    }

    /// One-line descriptions of what is wrong, empty when usable.
    public func problems() -> [String] {
        var out: [String] = []
        if batchSize < 1 { out.append("batch size must be positive, got \(batchSize)") }
        if epochs < 1 && steps == nil { out.append("epochs must be positive, got \(epochs)") }
        if let steps, steps < 1 { out.append("steps must be positive, got \(steps)") }
        if !(learningRate > 0) { out.append("learning rate must be positive, got \(learningRate)") }
        if let f = finalLearningRate, !(f >= 0) { out.append("final learning rate must be ≥ 0, got \(f)") }
        if let c = clipNorm, !(c > 0) { out.append("clip norm must be positive, got \(c)") }
        if let t = truncation, t.count != 2 || t[0] < 1 || t[1] < t[0] { out.append("TBPTT needs 1 ≤ k1 ≤ k2, got \(t)") }
        if let w = reconstructionWeight, !(w > 0) { out.append("reconstruction weight must be positive, got \(w)") }
        if checkpointEvery < 1 { out.append("checkpoint interval must be positive, got \(checkpointEvery)") }
        return out
    }

    enum CodingKeys: String, CodingKey {
        case batchSize = "batch_size", epochs, steps, learningRate = "learning_rate"
        case finalLearningRate = "final_learning_rate", clipNorm = "clip_norm"
        case scheduledSampling = "scheduled_sampling", truncation = "tbptt", seed
        case checkpointEvery = "checkpoint_every", anomalySequences = "anomaly_sequences"
        case forgetGateBias = "forget_gate_bias", outputBiasFromData = "output_bias_from_data"
        case zeroReadout = "zero_readout", reconstructionWeight = "reconstruction_weight"
    }
}

/// One optimiser step at a time, apart from the model: batches from a `VideoDataset`, Adam, gradient clipping by
/// norm, the scheduled-sampling schedule, atomic checkpoints and an exact resume. `VideoTraining` runs it to the
/// end with reports, validations and the model folder.
///
/// Batches: each epoch visits the sequences in a seeded random order, B at a time (the last partial batch is
/// dropped), and takes from each a random window of `framesNeeded` frames (the whole sequence when it is
/// exactly that long). Everything random derives from `options.seed`, so a run is reproducible and a resumed
/// run continues exactly where the checkpoint left off.
public final class VideoTrainer {
    /// The model trained in place.
    public let model: VideoAutoencoder
    /// The training sequences.
    public let data: VideoDataset
    /// The run's hyper-parameters (`extend` and `resume` may change its length).
    public private(set) var options: VideoTrainingOptions
    /// Adam over the model's flat parameter buffer.
    public let optimizer: Adam

    /// Where the run is; saved in checkpoints.
    public struct State: Codable, Equatable {
        /// Optimiser steps taken so far.
        public var step = 0
        /// The current epoch, 0-based.
        public var epoch = 0
        /// Batches of the current epoch already taken.
        public var batchInEpoch = 0
        /// Draws the scheduled-sampling coins and sampled frames.
        public var rng: RNG
        enum CodingKeys: String, CodingKey { case step, epoch, batchInEpoch = "batch_in_epoch", rng }
    }
    /// Where the run is: step, epoch and random stream.
    public private(set) var state: State

    /// What `step` returns (and `VideoTraining` reports as a `.step` event).
    public struct Progress {
        /// Steps taken, this one included.
        public var step: Int
        /// Steps the run takes in all (`totalSteps`).
        public var totalSteps: Int
        /// The epoch this step's batch came from, 0-based.
        public var epoch: Int
        /// Nil on steps where the loss was not computed.
        public var losses: StepLosses?
        /// The global gradient norm before clipping.
        public var gradientNorm: Float
        /// ε of this step: the probability of feeding the conditional decoders the ground-truth frame.
        public var teacherProbability: Double
        /// The learning rate this step used.
        public var learningRate: Float
    }

    private var plan: (epoch: Int, items: [(sequence: Int, start: Int)])?
    /// The batch's frames, reused from step to step.
    private var batchFrames = Tensor(shape: [0])

    /// Checks that every sequence is long enough for the model. Initialise or load the model's weights first.
    public init(model: VideoAutoencoder, data: VideoDataset, options: VideoTrainingOptions) throws {
        if let problem = options.problems().first { throw CaptionError(file: "options", problem) }
        guard data.count > 0 else { throw CaptionError(file: "data", "no training sequences") }
        guard data.dimension == model.config.frameDimension else {
            throw CaptionError(file: data.name(0), "frames have \(data.dimension) values, the model reads \(model.config.frameDimension)")
        }
        for i in 0..<data.count where data.length(i) < model.config.framesNeeded {
            throw CaptionError(file: data.name(i), "has \(data.length(i)) frames, the model needs \(model.config.framesNeeded)")
        }
        self.model = model
        self.data = data
        self.options = options
        optimizer = Adam(count: model.parameters.count, learningRate: options.learningRate)
        state = State(rng: RNG(seed: options.seed &+ 0x7EED))
    }

    /// Fresh weights: PyTorch's default initialisation from `options.seed`, then the forget-gate bias and the
    /// readouts' data-mean bias and zero weights when the options ask for them. (A resumed run loads its
    /// weights instead.)
    public func initializeModel() {
        model.initialize(seed: options.seed)
        if options.forgetGateBias != 0 { model.setForgetGateBias(options.forgetGateBias) }
        if options.outputBiasFromData { model.setOutputBias(meanFrame: data.meanFrame()) }
        if options.zeroReadout == true { model.zeroReadoutWeights() }
    }

    /// B: sequences per step, `options.batchSize` capped at the dataset's size.
    public var batchSize: Int { min(options.batchSize, data.count) }
    /// Whole batches per epoch (the last partial batch is dropped), at least 1.
    public var batchesPerEpoch: Int { max(1, data.count / batchSize) }
    /// Steps the run takes: `options.steps`, else epochs × batches per epoch.
    public var totalSteps: Int { options.steps ?? options.epochs * batchesPerEpoch }
    /// Whether every step of the run has been taken.
    public var isFinished: Bool { state.step >= totalSteps }

    /// Lets a resumed run change how long it trains (the rest of the options come from the checkpoint).
    public func extend(epochs: Int?, steps: Int?) {
        if let epochs { options.epochs = epochs; options.steps = nil }
        if let steps { options.steps = steps }
    }

    /// The learning rate at `step`: constant, or a cosine down to `finalLearningRate`.
    public func learningRate(at step: Int) -> Float {
        guard let final = options.finalLearningRate, totalSteps > 1 else { return options.learningRate }
        let progress = Double(min(step, totalSteps - 1)) / Double(totalSteps - 1)
        return final + (options.learningRate - final) * Float(0.5 * (1 + cos(Double.pi * progress)))
    }

    /// The sequences and window starts of `epoch`, in order.
    func epochItems(_ epoch: Int) -> [(sequence: Int, start: Int)] {
        if let plan, plan.epoch == epoch { return plan.items }
        var rng = RNG(seed: options.seed ^ (0xA24B_AED4_963E_E407 &* UInt64(epoch + 1)))
        var order = Array(0..<data.count)
        for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, rng.int(below: i + 1)) }
        let needed = model.config.framesNeeded
        let items = order.map { (sequence: $0, start: rng.int(below: data.length($0) - needed + 1)) }
        plan = (epoch, items)
        return items
    }

    /// One optimiser step on the next batch. The loss is computed when `computeLoss` (else the gradient only).
    @discardableResult
    public func step(computeLoss: Bool = true) -> Progress {
        if state.batchInEpoch >= batchesPerEpoch { state.epoch += 1; state.batchInEpoch = 0 }
        let b = batchSize
        let items = Array(epochItems(state.epoch)[(state.batchInEpoch * b)..<((state.batchInEpoch + 1) * b)])
        data.batch(items, frames: model.config.framesNeeded, into: &batchFrames)
        let batch = FrameBatch(frames: batchFrames)
        let p = model.parameters
        p.zeroGrads()
        let epsilon = options.scheduledSampling.teacherForcingProbability(step: state.step)
        let feed = TrainingFeed(teacherProbability: epsilon, sampleFrames: options.scheduledSampling.sampleModelToken,
                                truncation: options.truncation.map { TruncatedBPTT(k1: $0[0], k2: $0[1]) },
                                reconstructionWeight: options.reconstructionWeight ?? 1)
        let losses = model.lossAndGradients(batch, feed: feed, computeLoss: computeLoss, rng: &state.rng)
        let norm = options.clipNorm.map { GradientClipping.clipByNorm(p, maxNorm: $0) } ?? GradientClipping.globalNorm(p)
        let lr = learningRate(at: state.step)
        optimizer.learningRate = lr
        optimizer.update(p)
        state.step += 1
        state.batchInEpoch += 1
        return Progress(step: state.step, totalSteps: totalSteps, epoch: state.epoch, losses: computeLoss ? losses : nil,
                        gradientNorm: norm, teacherProbability: epsilon, learningRate: lr)
    }

    // MARK: Checkpoints

    struct CheckpointHeader: Codable {
        var config: VideoModelConfig
        var options: VideoTrainingOptions
        var state: State
        var adamStep: Int
        enum CodingKeys: String, CodingKey { case config, options, state, adamStep = "adam_step" }
    }

    /// Writes parameters, Adam's moments (`optimizer.exp_avg`, `optimizer.exp_avg_sq`, flat) and the run's
    /// state (metadata `trainer`, JSON) to `path`, atomically.
    public func saveCheckpoint(to path: String) throws {
        let header = CheckpointHeader(config: model.config, options: options, state: state, adamStep: optimizer.step)
        let json = String(decoding: try JSONEncoder().encode(header), as: UTF8.self)
        try VideoModelFolder.writeWeights(model.parameters, to: path) { writer in
            writer.add("optimizer.exp_avg", Tensor(shape: [optimizer.m.count], storage: optimizer.m))
            writer.add("optimizer.exp_avg_sq", Tensor(shape: [optimizer.v.count], storage: optimizer.v))
            writer.metadata["trainer"] = json
        }
    }

    /// The model configuration stored in a checkpoint (to build the model before `resume`).
    public static func checkpointConfig(_ path: String) throws -> (VideoModelConfig, VideoTrainingOptions) {
        let header = try readHeader(SafeTensorsFile(path: path))
        return (header.config, header.options)
    }

    /// Restores parameters, optimiser and position from a checkpoint written by `saveCheckpoint` for the same
    /// model configuration and data.
    public func resume(from path: String) throws {
        let file = try SafeTensorsFile(path: path)
        let header = try VideoTrainer.readHeader(file)
        guard header.config == model.config else {
            throw CaptionError(file: path, "the checkpoint is for another model configuration")
        }
        try VideoModelFolder.readWeights(file, into: model.parameters, ignoring: ["optimizer."])
        let m = try file.tensor("optimizer.exp_avg"), v = try file.tensor("optimizer.exp_avg_sq")
        guard m.count == model.parameters.count && v.count == m.count else {
            throw CaptionError(file: path, "optimizer state has \(m.count) values, the model \(model.parameters.count)")
        }
        optimizer.restore(step: header.adamStep, m: m.storage, v: v.storage)
        let (epochs, steps) = (options.epochs, options.steps)
        options = header.options
        options.epochs = epochs
        options.steps = steps
        state = header.state
        plan = nil
    }

    static func readHeader(_ file: SafeTensorsFile) throws -> CheckpointHeader {
        guard let json = file.metadata["trainer"],
              let header = try? JSONDecoder().decode(CheckpointHeader.self, from: Data(json.utf8)) else {
            throw CaptionError(file: file.path, "not a video training checkpoint (no readable \"trainer\" metadata)")
        }
        return header
    }
}
