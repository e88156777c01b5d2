import CaptionSupport
import Foundation
import NN
import TensorCore

/// Where a training run reads its sequences.
public enum VideoTrainingSource {
    /// A data folder: one sequence per subfolder of frames (or video file).
    case folder(String)
    /// `count` moving-digit sequences made in memory by `MovingObjects(seed:)`, the sequences
    /// `caption video synth --count N --seed S` writes (64 × 64 gray, 20 frames).
    case synthetic(count: Int, seed: UInt64)
    /// Sequences already in memory; `name` describes them in the model's config.json.
    case sequences(VideoDataset, name: String)

    /// How the source is recorded in the finished model's config.json (`training.data`).
    public var description: String {
        switch self {
        case .folder(let path): return path
        case .synthetic(let count, let seed): return "synthetic:\(count):seed=\(seed)"
        case .sequences(_, let name): return name
        }
    }
}

/// Everything a training run is asked to do: the data, the model, the hyper-parameters and the output folder.
public struct VideoTrainingJob {
    /// How a resumed run may change its length (everything else comes from the checkpoint).
    public struct Resume: Equatable, Sendable {
        /// New number of passes over the data (clears a stored step count).
        public var epochs: Int?
        /// New total of optimiser steps.
        public var steps: Int?
        /// Keeps the checkpoint's length.
        public init(epochs: Int? = nil, steps: Int? = nil) {
            self.epochs = epochs
            self.steps = steps
        }
    }

    /// The training sequences.
    public var data: VideoTrainingSource
    /// Evaluated (free-running) after each epoch and at the end, when given.
    public var validation: VideoTrainingSource?
    /// The model folder: `checkpoint.safetensors` while training, then `config.json`, `model.safetensors` and
    /// `anomaly.json`.
    public var out: String
    /// The architecture of a fresh run (a resumed run uses the checkpoint's).
    public var config: VideoModelConfig
    /// The hyper-parameters of a fresh run (a resumed run uses the checkpoint's).
    public var options: VideoTrainingOptions
    /// Non-nil: continue from `checkpointPath` when it exists (a fresh run when it does not).
    public var resume: Resume?
    /// A `.report` event every this many steps (and at the last).
    public var logEvery: Int
    /// Store model.safetensors as F16 (the weights are rounded before the anomaly statistics are measured).
    public var half: Bool
    /// For feature input: the captioning model folder whose CNN makes the features (default: the one the
    /// configuration records).
    public var encoderWeights: String?
    /// Makes the frame encoder of a captioning model folder (feature input only: the CNN lives in another
    /// library).
    public var featureEncoder: ((String) throws -> FrameEncoder)?

    /// A fresh run with a report every 50 steps, F32 weights and no feature encoder.
    public init(data: VideoTrainingSource, validation: VideoTrainingSource? = nil, out: String, config: VideoModelConfig,
                options: VideoTrainingOptions, resume: Resume? = nil, logEvery: Int = 50, half: Bool = false,
                encoderWeights: String? = nil, featureEncoder: ((String) throws -> FrameEncoder)? = nil) {
        self.data = data
        self.validation = validation
        self.out = out
        self.config = config
        self.options = options
        self.resume = resume
        self.logEvery = logEvery
        self.half = half
        self.encoderWeights = encoderWeights
        self.featureEncoder = featureEncoder
    }

    /// `out/checkpoint.safetensors`.
    public var checkpointPath: String { out + "/checkpoint.safetensors" }
}

/// The means over the steps since the previous report.
public struct VideoTrainingReport: Equatable, Sendable {
    /// The step just taken (1-based).
    public var step: Int
    /// The run's length in steps.
    public var totalSteps: Int
    /// Zero-based epoch of the last step.
    public var epoch: Int
    /// Mean total loss (the unweighted sum of the two decoders' losses) of the steps that computed it.
    public var loss: Double
    /// Mean reconstruction loss (0 without a reconstruction decoder).
    public var reconstruction: Double
    /// Mean future-prediction loss (0 without a future predictor).
    public var future: Double
    /// Mean global gradient norm before clipping.
    public var gradientNorm: Double
    /// The teacher-forcing probability ε of the last step.
    public var teacherProbability: Double
    /// The learning rate of the last step.
    public var learningRate: Float
    /// Training sequences per second of wall time over the window.
    public var sequencesPerSecond: Double
}

/// What `VideoTraining.run` reports, in order, on the training thread.
public enum VideoTrainingEvent {
    /// A resume was asked for but `path` holds no checkpoint: the run starts afresh.
    case noCheckpoint(path: String)
    /// The training data is in memory: `sequences` from `source`, in `seconds` (the feature CNN's loading
    /// included).
    case dataLoaded(sequences: Int, source: String, seconds: Double)
    /// Training starts at `step` (0, or the checkpoint's step when `resumed`) of `totalSteps`.
    case started(step: Int, totalSteps: Int, batchSize: Int, batchesPerEpoch: Int, parameters: Int, resumed: Bool)
    /// After every optimiser step.
    case step(VideoTrainer.Progress)
    /// Every `logEvery` steps and after the last: means since the previous report.
    case report(VideoTrainingReport)
    /// The validation set after an epoch (and at the end) with the weights after `step` steps.
    case validation(step: Int, EvaluationReport)
    /// A checkpoint was written after `step` steps.
    case checkpoint(step: Int, path: String)
    /// The model folder is written.
    case finished(VideoTrainingResult)
}

/// How a run ended.
public struct VideoTrainingResult {
    /// The trained model, as written (rounded to F16 when the job asked for half precision).
    public let model: VideoAutoencoder
    /// The model folder.
    public let out: String
    /// Optimiser steps in total (a resumed run's earlier steps included).
    public let steps: Int
    /// Wall time of this process's training loop (checkpoints and validations included).
    public let seconds: Double
    /// The training reconstruction-error distribution stored as anomaly.json (nil without reconstructions to
    /// measure).
    public let anomaly: AnomalyStatistics?
    /// `requestStop()` ended the run early (the checkpoint holds its last step; a resume continues it).
    public let interrupted: Bool
}

/// A whole training run, as `caption video train` does it: loads the data, builds (or resumes) the model and its
/// `VideoTrainer`, steps it to the end with reports, checkpoints (atomic, every `checkpointEvery` steps and at the
/// end) and validations (after each epoch: the weights after the epoch's last step are evaluated once the next
/// epoch's first step is taken, and the last weights at the end), then measures the anomaly statistics and
/// writes the model folder. A resumed run continues the checkpoint exactly: its final weights equal an
/// uninterrupted run's.
///
/// ```swift
/// let training = VideoTraining(job)
/// training.onEvent = { print($0) }
/// let result = try training.run()
/// ```
public final class VideoTraining {
    /// What the run does.
    public let job: VideoTrainingJob
    /// Progress reports (called on the training thread).
    public var onEvent: (VideoTrainingEvent) -> Void = { _ in }

    private let stopLock = NSLock()
    private var stopFlag = false

    /// A run of `job`; nothing happens until `run`.
    public init(_ job: VideoTrainingJob) {
        self.job = job
    }

    /// Asks the run to stop after the current step (it writes a checkpoint and the model folder first). Safe from
    /// any thread.
    public func requestStop() {
        stopLock.lock(); stopFlag = true; stopLock.unlock()
    }

    private var stopRequested: Bool {
        stopLock.lock(); defer { stopLock.unlock() }
        return stopFlag
    }

    /// Trains to the end (or to `requestStop`). Throws `CaptionError` for a bad file or folder,
    /// `CaptionError.usage` (naming the CLI's flags, as `Trainer` does) for options that cannot work, and the feature encoder's or image decoder's errors.
    @discardableResult
    public func run() throws -> VideoTrainingResult {
        guard job.logEvery >= 1 else { throw CaptionError.usage("--log-every must be at least 1, got \(job.logEvery)") }
        let checkpointPath = job.checkpointPath
        var config = job.config
        var options = job.options
        let resuming = job.resume != nil && FileManager.default.fileExists(atPath: checkpointPath)
        if job.resume != nil && !resuming { onEvent(.noCheckpoint(path: checkpointPath)) }
        if resuming { (config, options) = try VideoTrainer.checkpointConfig(checkpointPath) }

        // Data
        let started = Date()
        var frameEncoder: FrameEncoder? = nil
        if config.input == .features {
            guard let encoderPath = job.encoderWeights ?? config.featureEncoder, let make = job.featureEncoder else {
                throw CaptionError.usage("--input features needs --encoder-weights DIR")
            }
            let encoder = try make(encoderPath)
            config.featureDimension = encoder.dimension
            config.featureEncoder = encoderPath
            frameEncoder = encoder
        }
        if let problem = config.problems().first { throw CaptionError.usage(problem) }
        let dataset = try load(job.data, config: config, frameEncoder: frameEncoder)
        let validation = try job.validation.map { try load($0, config: config, frameEncoder: frameEncoder) }
        onEvent(.dataLoaded(sequences: dataset.count, source: job.data.description, seconds: Date().timeIntervalSince(started)))

        // Model and trainer
        let model = try VideoAutoencoder(config: config)
        let trainer = try VideoTrainer(model: model, data: dataset, options: options)
        if resuming {
            try trainer.resume(from: checkpointPath)
            trainer.extend(epochs: job.resume?.epochs, steps: job.resume?.steps)
        } else {
            trainer.initializeModel()
        }
        try VideoModelFolder.createFolder(job.out)
        onEvent(.started(step: trainer.state.step, totalSteps: trainer.totalSteps, batchSize: trainer.batchSize,
                         batchesPerEpoch: trainer.batchesPerEpoch, parameters: model.parameterCount, resumed: resuming))

        // Loop
        var window = (loss: 0.0, reconstruction: 0.0, future: 0.0, norm: 0.0, count: 0)
        var windowStart = Date()
        let trainStart = Date()
        var lastEpoch = trainer.state.epoch
        var checkpointed = trainer.state.step
        var interrupted = false
        func checkpoint() throws {
            try trainer.saveCheckpoint(to: checkpointPath)
            checkpointed = trainer.state.step
            onEvent(.checkpoint(step: trainer.state.step, path: checkpointPath))
        }
        while !trainer.isFinished {
            let progress = trainer.step()
            onEvent(.step(progress))
            if let l = progress.losses {
                window.loss += l.total; window.reconstruction += l.reconstruction ?? 0; window.future += l.future ?? 0
            }
            window.norm += Double(progress.gradientNorm); window.count += 1
            if progress.step % job.logEvery == 0 || progress.step == progress.totalSteps {
                let n = Double(window.count), seconds = Date().timeIntervalSince(windowStart)
                onEvent(.report(VideoTrainingReport(
                    step: progress.step, totalSteps: progress.totalSteps, epoch: progress.epoch, loss: window.loss / n,
                    reconstruction: window.reconstruction / n, future: window.future / n, gradientNorm: window.norm / n,
                    teacherProbability: progress.teacherProbability, learningRate: progress.learningRate,
                    sequencesPerSecond: n * Double(trainer.batchSize) / max(seconds, 1e-9))))
                window = (0, 0, 0, 0, 0)
                windowStart = Date()
            }
            if progress.step % trainer.options.checkpointEvery == 0 || progress.step == progress.totalSteps { try checkpoint() }
            if let validation, trainer.state.epoch != lastEpoch || trainer.isFinished {
                lastEpoch = trainer.state.epoch
                if let report = try? VideoEvaluation.evaluate(model, validation) {
                    onEvent(.validation(step: progress.step, report))
                }
            }
            if stopRequested && !trainer.isFinished { interrupted = true; break }
        }
        if checkpointed != trainer.state.step { try checkpoint() }
        let trainSeconds = Date().timeIntervalSince(trainStart)

        // Anomaly statistics and the model folder
        if job.half { model.roundToHalfPrecision() }
        let count = min(trainer.options.anomalySequences, dataset.count)
        let indices = (0..<count).map { $0 * dataset.count / max(count, 1) }
        let errors = VideoEvaluation.sequenceErrors(model, dataset, indices: indices)
        let anomaly = errors.isEmpty ? nil : AnomalyStatistics(errors: errors, loss: config.loss)
        let summary = VideoTrainingSummary(data: job.data.description, sequences: dataset.count, steps: trainer.state.step,
                                           batchSize: trainer.batchSize, seconds: trainSeconds, options: trainer.options)
        try VideoModelFolder.save(model, anomaly: anomaly, training: summary, to: job.out, half: job.half)
        let result = VideoTrainingResult(model: model, out: job.out, steps: trainer.state.step, seconds: trainSeconds,
                                         anomaly: anomaly, interrupted: interrupted)
        onEvent(.finished(result))
        return result
    }

    /// The sequences of `source` as the model reads them.
    private func load(_ source: VideoTrainingSource, config: VideoModelConfig, frameEncoder: FrameEncoder?) throws -> VideoDataset {
        switch source {
        case .folder(let folder):
            if let frameEncoder {
                return try VideoDataset.loadFeatures(folder: folder, encoder: frameEncoder, minimumLength: config.framesNeeded)
            }
            return try VideoDataset.loadPixels(folder: folder, size: config.frameSize, channels: config.channels,
                                               minimumLength: config.framesNeeded)
        case .synthetic(let count, let seed):
            let generator = MovingObjects(seed: seed)
            guard config.input == .pixels && config.frameSize == generator.size && config.channels == 1 else {
                throw CaptionError.usage("--synthetic makes \(generator.size)×\(generator.size) gray frames: use --input pixels --size \(generator.size) --channels 1")
            }
            guard generator.frames >= config.framesNeeded else {
                throw CaptionError.usage("--synthetic sequences have \(generator.frames) frames, the model needs \(config.framesNeeded)")
            }
            return VideoDataset.synthetic(generator, indices: 0..<count)
        case .sequences(let dataset, _):
            return dataset
        }
    }
}
