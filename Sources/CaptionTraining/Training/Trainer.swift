import Foundation
import Imaging
import NN
import TensorCore
import Vision
import CaptionSupport
import CaptionData
import CaptionMetrics
import SyntheticWorld
import Captioning

/// How a run ended.
public struct TrainingSummary: Sendable {
    /// Optimiser steps taken in total (resumed parts included).
    public var steps: Int
    /// Completed epochs.
    public var epochs: Int
    /// The best validation BLEU-4 (nil without validation).
    public var bestBLEU4: Double?
    /// The step whose weights scored `bestBLEU4` (nil without validation).
    public var bestStep: Int?
    /// Early stopping ended the run (`earlyStoppingPatience` validations without a new best BLEU-4).
    public var stoppedEarly: Bool
    /// `requestStop()` ended the run (a checkpoint was written; `--resume` continues it).
    public var interrupted: Bool
    /// The model folder (best validation BLEU-4 weights, or the last weights without validation).
    public var modelFolder: String
    /// Wall time of the optimiser steps of the whole run (resumed parts included).
    public var trainingSeconds: Double
    /// Training captions per second of step time over this process's steps.
    public var captionsPerSecond: Double
}

/// Trains a captioning model on a COCO-style folder (see `TrainingOptions` for every knob):
///
/// - a step: the batch's images through the CNN (training mode when fine-tuned, else cached features), the
///   decoder's packed forward with teacher forcing or scheduled sampling (`TokenSampling`, ε from the schedule at
///   this step), the tutorial's loss (cross-entropy + α_c · doubly stochastic attention term), backward into the
///   decoder and (fine-tuned) the encoder, clipping over both, and Adam with PyTorch semantics — one optimiser per
///   part, so the encoder has its own learning rate;
/// - validation: real inference (greedy or beam search, `BeamSearch` over `AttentionStepModel`) on the validation
///   images, scored with the COCO metrics; a new best BLEU-4 rewrites the model folder; LR decay and early stopping
///   follow the validations without improvement;
/// - checkpoints (`TrainingCheckpoint`): at the end of every epoch and every `checkpointEverySteps` steps, one
///   atomic file; `Trainer.resume` continues exactly (the same batches, dropout masks, sampling coins and Adam
///   moments: a resumed run's losses equal an uninterrupted run's);
/// - a JSONL log (`TrainingLog`) of every step and validation, and events for a progress display.
///
/// Files under the output folder: the model (`config.json`, `vocab.json`, `encoder.safetensors`,
/// `decoder.safetensors`), and `training/` with `checkpoint.safetensors`, `log.jsonl` and, while running, the
/// feature cache `features.f32`.
public final class Trainer {
    /// The run's settings (for a resumed run, the checkpoint's with the allowed changes).
    public let options: TrainingOptions
    /// The model being trained; its weights change in place as the run goes on.
    public let model: TrainableModel
    /// Where the model folder and `training/` are written.
    public let outputFolder: String
    /// Progress reports (called on the training thread).
    public var onEvent: (TrainingEvent) -> Void = { _ in }

    let train: CaptionDataset
    let trainCaptions: [[[Int]]]
    let validation: CaptionDataset?
    let batches: TrainingBatches
    var state: TrainingState
    let stepper: TrainingStepper
    var decoderAdam: Adam { stepper.decoderAdam }
    var encoderAdam: Adam? { stepper.encoderAdam }
    var workspace: DecoderWorkspace { stepper.workspace }
    private var trainStore: ImageStore?
    /// With attention supervision: `AttentionTargets` of every training caption.
    private var attentionTargets: [[[[Int]]]]?
    private var validationStore: ImageStore?
    private var log: TrainingLog?
    private let stopLock = NSLock()
    private var stopFlag = false
    /// Test hook: after writing the checkpoint at this step, throw as if the process had been killed.
    var abortAfterCheckpoint: Int?

    /// `<output>/training`: the checkpoint, the log and the feature cache.
    public var trainingFolder: String { (outputFolder as NSString).appendingPathComponent("training") }
    /// `<output>/training/checkpoint.safetensors`, what `Trainer.resume` reads.
    public var checkpointPath: String { (trainingFolder as NSString).appendingPathComponent("checkpoint.safetensors") }
    /// `<output>/training/log.jsonl`: one `StepRecord` or `ValidationRecord` per line.
    public var logPath: String { (trainingFolder as NSString).appendingPathComponent("log.jsonl") }
    var fineTune: Bool { options.fineTuneEncoder }

    // MARK: Setup

    /// A new run. `initialModel`: a model folder to fine-tune (its vocabulary and architecture are kept, `spec` is
    /// ignored); `encoderWeights`: a pretrained CNN (model folder or torchvision safetensors) under a new decoder;
    /// neither: a new model per `spec`, with a vocabulary built from the training captions.
    public convenience init(data: String, out: String, options: TrainingOptions, spec: ModelSpec = ModelSpec(),
                            initialModel: String? = nil, encoderWeights: String? = nil) throws {
        try options.validate()
        let checkpoint = ((out as NSString).appendingPathComponent("training") as NSString)
            .appendingPathComponent("checkpoint.safetensors")
        if FileManager.default.fileExists(atPath: checkpoint) {
            throw CaptionError(file: checkpoint, "a run is already stored here: pass --resume to continue it, or choose another --out")
        }
        let (train, validation) = try Trainer.loadData(data, options)
        let model: TrainableModel
        if let initialModel {
            model = try TrainableModel.load(folder: initialModel)
        } else {
            let vocabulary = Vocabulary.build(from: train.tokenizedCaptions, minWordFrequency: options.minWordFrequency)
            model = try TrainableModel(spec: spec, vocabulary: vocabulary, seed: options.seed, encoderPath: encoderWeights)
        }
        try self.init(model: model, train: train, validation: validation, out: out, options: options,
                      state: TrainingState(), moments: nil)
    }

    /// Continues the run stored in `out` (after a kill, exactly). `adjust` may change `epochs`, `maxSteps`,
    /// `checkpointEverySteps` and `validateEverySteps`; other changes are refused.
    public static func resume(data: String, out: String, adjust: (inout TrainingOptions) -> Void = { _ in }) throws -> Trainer {
        let path = ((out as NSString).appendingPathComponent("training") as NSString).appendingPathComponent("checkpoint.safetensors")
        let contents = try TrainingCheckpoint.read(path)
        var options = contents.options
        adjust(&options)
        var comparable = options
        comparable.epochs = contents.options.epochs
        comparable.maxSteps = contents.options.maxSteps
        comparable.checkpointEverySteps = contents.options.checkpointEverySteps
        comparable.validateEverySteps = contents.options.validateEverySteps
        guard comparable == contents.options else {
            throw CaptionError(file: path, "--resume continues the stored run with its own options; only --epochs, --max-steps, --checkpoint-every and --val-every may change")
        }
        try options.validate()
        let (train, validation) = try loadData(data, options)
        return try Trainer(model: contents.model, train: train, validation: validation, out: out, options: options,
                           state: contents.state, moments: (contents.decoderMoments, contents.encoderMoments))
    }

    private init(model: TrainableModel, train: CaptionDataset, validation: CaptionDataset?, out: String,
                 options: TrainingOptions, state: TrainingState,
                 moments: ((m: [Float], v: [Float]), (m: [Float], v: [Float])?)?) throws {
        self.model = model
        self.train = train
        self.validation = validation
        self.outputFolder = out
        self.options = options
        self.state = state
        let vocabulary = model.vocabulary
        trainCaptions = train.images.map { image in image.captions.map { vocabulary.encode($0.tokens) } }
        batches = TrainingBatches(dataset: train, batchSize: options.batchSize, captionsPerImage: options.captionsPerImage,
                                  seed: options.seed)
        if options.fineTuneEncoder {
            guard model.encoder.setTrainable(from: options.fineTuneFrom) else {
                throw CaptionError.usage("--fine-tune-from \(options.fineTuneFrom ?? ""): no such module in \(model.encoder.architecture)")
            }
        } else {
            model.encoder.freezeAll()
        }
        stepper = TrainingStepper(model: model, options: options)
        if let moments {
            decoderAdam.restore(step: state.decoderAdamStep, m: moments.0.m, v: moments.0.v)
            if let encoderAdam {
                guard let e = moments.1 else { throw CaptionError(file: out, "checkpoint lacks the encoder's Adam state") }
                encoderAdam.restore(step: state.encoderAdamStep, m: e.m, v: e.v)
            }
        }
    }

    /// The training split (captions longer than the limit dropped) and the validation split, if any.
    static func loadData(_ folder: String, _ options: TrainingOptions) throws -> (CaptionDataset, CaptionDataset?) {
        let full = try CaptionDataset.load(folder: folder, split: options.trainSplit)
        let train = full.limitingCaptionLength(to: options.maxCaptionWords)
        guard !train.images.isEmpty else {
            throw CaptionError(file: full.source, "no \(options.trainSplit) captions of at most \(options.maxCaptionWords) words")
        }
        var validation: CaptionDataset?
        if let split = options.validationSplit, try CaptionDataset.splits(in: folder).contains(split) {
            let v = try CaptionDataset.load(folder: folder, split: split)
            if !v.images.isEmpty { validation = v }
        }
        return (train, validation)
    }

    /// Asks the run to stop after the current step (it writes a checkpoint first). Safe from any thread.
    public func requestStop() {
        stopLock.lock(); stopFlag = true; stopLock.unlock()
    }

    private var stopRequested: Bool {
        stopLock.lock(); defer { stopLock.unlock() }
        return stopFlag
    }

    // MARK: Run

    /// Total optimiser steps the run is set for.
    public var totalSteps: Int { min(options.maxSteps ?? Int.max, options.epochs * batches.batchesPerEpoch) }

    /// Trains until the step or epoch limit, early stopping or `requestStop()`, validating and checkpointing on the way,
    /// and leaves the model folder written; throws on unreadable data or unwritable files.
    public func run() throws -> TrainingSummary {
        try prepare()
        defer { trainStore?.close(); validationStore?.close() }
        onEvent(.started(step: state.step, totalSteps: totalSteps, batchesPerEpoch: batches.batchesPerEpoch,
                         epochs: options.epochs))
        var stepsThisRun = 0, captionsThisRun = 0, secondsThisRun = 0.0
        var lastCheckpointStep = state.step
        var interrupted = false
        func reachedEnd() -> Bool { state.stopped || state.step >= totalSteps || state.epoch >= options.epochs }

        epochs: while !reachedEnd() {
            let epochBatches = batches.batches(epoch: state.epoch)
            let first = state.batchInEpoch
            let pipeline = Pipeline(count: epochBatches.count - first) { k in try self.prepareBatch(epochBatches[first + k]) }
            defer { pipeline.cancel() }
            for b in first..<epochBatches.count {
                let prepared = try pipeline.next()
                let record = try step(prepared, epoch: state.epoch, batch: b)
                stepsThisRun += 1; captionsThisRun += record.captions; secondsThisRun += record.seconds
                try log?.append(record.jsonLine)
                onEvent(.step(record))
                if b + 1 < epochBatches.count {
                    if let n = options.validateEverySteps, state.step % n == 0, validation != nil { try validate(decides: true) }
                    if let n = options.checkpointEverySteps, state.step % n == 0 {
                        try checkpoint(); lastCheckpointStep = state.step
                    }
                }
                if stopRequested { interrupted = true; break epochs }
                if state.stopped || state.step >= totalSteps { break }
            }
            guard state.batchInEpoch == epochBatches.count else { break }
            if validation != nil { try validate(decides: true) }
            state.epoch += 1
            state.batchInEpoch = 0
            try checkpoint(); lastCheckpointStep = state.step
        }

        // The last weights are validated (without touching LR decay or patience) unless they just were.
        if !interrupted, validation != nil, state.step > 0, state.lastValidationStep != state.step {
            try validate(decides: false)
        }
        if state.step != lastCheckpointStep || interrupted { try checkpoint() }
        if validation == nil || state.bestStep == nil {
            try recalibrateBatchNorm()
            try writeModel()
        }
        let captionsPerSecond = secondsThisRun > 0 ? Double(captionsThisRun) / secondsThisRun : 0
        return TrainingSummary(steps: state.step, epochs: state.epoch, bestBLEU4: state.bestBLEU4, bestStep: state.bestStep,
                               stoppedEarly: state.stopped, interrupted: interrupted, modelFolder: outputFolder,
                               trainingSeconds: state.trainingSeconds, captionsPerSecond: captionsPerSecond)
    }

    /// Checks every image header (before anything is written), opens the log, and (frozen encoder) computes the
    /// cached features.
    private func prepare() throws {
        let pre = model.encoderConfig.preprocessing
        let kind: ImageStore.Kind = fineTune ? .inputs : .features
        let trainStore = ImageStore(kind: kind, paths: train.images.map(\.path), preprocessing: pre, encoder: model.encoder,
                                    memoryBudget: options.cacheMemoryBytes, diskBudget: options.cacheDiskBytes,
                                    diskPath: (trainingFolder as NSString).appendingPathComponent("features.f32"))
        self.trainStore = trainStore
        onEvent(.message("checking \(train.images.count) \(train.split) images"))
        let headers = try trainStore.checkHeaders { "image \(self.train.images[$0].id) of \(self.train.source)" }
        if options.attentionSupervision > 0 {
            let grid = model.encoder.gridSize(height: pre.outputHeight, width: pre.outputWidth)
            attentionTargets = try AttentionTargets.build(train, sizes: headers.map { ($0.width, $0.height) },
                                                          grid: GridSize(height: grid.height, width: grid.width),
                                                          preprocessing: pre)
        }
        if let validation {
            let images = validationImages
            let store = ImageStore(kind: kind, paths: images.map(\.path), preprocessing: pre, encoder: model.encoder,
                                   memoryBudget: options.cacheMemoryBytes / 8)
            try store.checkHeaders { "image \(images[$0].id) of \(validation.source)" }
            validationStore = store
        }
        do { try FileManager.default.createDirectory(atPath: trainingFolder, withIntermediateDirectories: true) } catch {
            throw CaptionError(file: trainingFolder, "cannot create folder: \(error.localizedDescription)")
        }
        log = try TrainingLog(path: logPath, truncatingTo: state.logLength)
        if !fineTune {
            let total = train.images.count
            onEvent(.message("caching the frozen encoder's features of \(total) \(train.split) images"))
            try trainStore.precompute { self.onEvent(.preparing(what: "features", done: $0, total: total)) }
            if let v = validationStore {
                try v.precompute { self.onEvent(.preparing(what: "validation features", done: $0, total: v.paths.count)) }
            }
            let u = trainStore.usage
            onEvent(.message(String(format: "feature cache: %d of %d images, %.0f MB in memory, %.0f MB on disk",
                                    u.cached, total, Double(u.memoryBytes) / 1e6, Double(u.diskBytes) / 1e6)))
        }
    }

    /// The images validated (the first `validationImages` of the split).
    var validationImages: [CaptionedImage] {
        guard let validation else { return [] }
        return options.validationImages > 0 ? Array(validation.images.prefix(options.validationImages)) : validation.images
    }

    // MARK: Step

    struct PreparedBatch {
        var pairs: [CaptionPair]
        /// Distinct images of the batch, in order of first appearance, and each pair's position among them.
        var images: [Int]
        var slot: [Int]
        /// N×3×S×S inputs or N×L×D features of `images`.
        var tensor: Tensor
    }

    /// Runs on the prefetch thread: decodes (or reads from the cache) the batch's images.
    private func prepareBatch(_ pairs: [CaptionPair]) throws -> PreparedBatch {
        var images: [Int] = [], position: [Int: Int] = [:], slot: [Int] = []
        for pair in pairs {
            if let p = position[pair.image] { slot.append(p) } else {
                position[pair.image] = images.count
                slot.append(images.count)
                images.append(pair.image)
            }
        }
        return PreparedBatch(pairs: pairs, images: images, slot: slot, tensor: try trainStore!.batch(images))
    }

    /// One optimiser step on a prepared batch.
    func step(_ batch: PreparedBatch, epoch: Int, batch index: Int) throws -> StepRecord {
        let captions = batch.pairs.map { trainCaptions[$0.image][$0.caption] }
        let cells = attentionTargets.map { targets in batch.pairs.map { targets[$0.image][$0.caption] } }
        let result = stepper.step(images: batch.tensor, slot: batch.slot, captions: captions, stepIndex: state.step,
                                  lrScale: state.lrScale, attentionCells: cells)
        state.step += 1
        state.batchInEpoch = index + 1
        state.decoderAdamStep = decoderAdam.step
        state.encoderAdamStep = encoderAdam?.step ?? 0
        state.trainingSeconds += result.seconds
        return StepRecord(step: state.step, epoch: epoch, batch: index, loss: result.loss.total,
                          crossEntropy: result.loss.crossEntropy, attentionPenalty: result.loss.attentionPenalty,
                          attentionSupervision: cells == nil ? nil : result.loss.attentionSupervision,
                          epsilon: result.epsilon, learningRate: decoderAdam.learningRate,
                          encoderLearningRate: encoderAdam?.learningRate, gradientNorm: result.gradientNorm,
                          captions: captions.count, images: batch.images.count, seconds: result.seconds)
    }

    // MARK: Validation

    /// Captions the validation images by real inference and scores them. With `decides`, the result drives LR decay
    /// and early stopping; a new best BLEU-4 always rewrites the model folder.
    @discardableResult
    func validate(decides: Bool) throws -> ValidationRecord {
        onEvent(.validationStarted(step: state.step))
        let started = DispatchTime.now().uptimeNanoseconds
        try recalibrateBatchNorm()
        let images = validationImages
        let vocabulary = model.vocabulary
        let generator = CaptionGenerator(decoder: model.decoder, parameters: model.decoderParameters, vocabulary: vocabulary)
        let chunk = 32
        let chunks = stride(from: 0, to: images.count, by: chunk).map { Array($0..<min($0 + chunk, images.count)) }
        let store = validationStore!
        let pipeline = Pipeline(count: chunks.count) { k in try store.batch(chunks[k]) }
        defer { pipeline.cancel() }
        var hypotheses: [ImageID: String] = [:]
        var lossSum = 0.0, lossTokens = 0
        var rng = RNG(seed: 0)
        for k in chunks.indices {
            let tensor = try pipeline.next()
            let features = fineTune ? model.encoder.forward(images: tensor) : tensor
            let results = generator.caption(annotations: features, beam: options.validationBeam,
                                            maxLength: options.maxCaptionWords)
            for (i, r) in zip(chunks[k], results) {
                hypotheses[images[i].id] = vocabulary.decode(r.tokenIDs).joined(separator: " ")
            }
            // Teacher-forced loss of each image's first reference.
            let captions = chunks[k].map { vocabulary.encode(images[$0].captions[0].tokens) }
            let fwd = model.decoder.forward(features: features, captions: captions, lengths: captions.map(\.count),
                                            model.decoderParameters, workspace: workspace, training: false, rng: &rng)
            let loss = model.decoder.loss(fwd, alphaC: 0)
            lossSum += Double(loss.crossEntropy) * Double(fwd.tokenCount)
            lossTokens += fwd.tokenCount
        }
        let references = Dictionary(uniqueKeysWithValues: images.map { ($0.id, $0.captions.map(\.text)) })
        let scores: MetricScores
        do { scores = try COCOMetrics.evaluate(references: references, hypotheses: hypotheses) } catch {
            throw CaptionError(file: validation!.source, "cannot score the validation captions: \(error)")
        }

        let bleu4 = scores.bleu4
        let improved = state.bestBLEU4.map { bleu4 > $0 } ?? true
        if improved {
            state.bestBLEU4 = bleu4
            state.bestStep = state.step
            if decides { state.validationsSinceImprovement = 0 }
        } else if decides {
            state.validationsSinceImprovement += 1
            let n = state.validationsSinceImprovement
            if options.lrPatience > 0 && options.lrDecayFactor < 1 && n % options.lrPatience == 0 {
                state.lrScale *= options.lrDecayFactor
            }
            if options.earlyStoppingPatience > 0 && n >= options.earlyStoppingPatience { state.stopped = true }
        }
        state.lastValidationStep = state.step
        let record = ValidationRecord(
            step: state.step, epoch: state.epoch, bleu: scores.bleu, rougeL: scores.rougeL, ciderD: scores.ciderD,
            loss: Float(lossSum / Double(max(lossTokens, 1))), images: images.count, beam: options.validationBeam,
            improved: improved, bestBLEU4: state.bestBLEU4 ?? bleu4, sinceImprovement: state.validationsSinceImprovement,
            learningRate: options.learningRate * state.lrScale, stops: decides && state.stopped,
            seconds: Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9)
        try log?.append(record.jsonLine)
        onEvent(.validation(record))
        if improved { try writeModel() }
        return record
    }

    /// Re-estimates the fine-tuned encoder's BatchNorm running statistics for its current weights: training-mode
    /// passes (which update the running averages with PyTorch's momentum, 0.1) over the same fixed training
    /// batches each time — the first `batchSize · batchNormRecalibration` training images, in order. After n passes
    /// an old statistic keeps a weight of 0.9ⁿ (12% at 20). Training itself normalises with batch statistics, so this
    /// changes only what inference (validation, the written model) sees; it is deterministic, so resuming stays exact.
    private func recalibrateBatchNorm() throws {
        guard fineTune, options.batchNormRecalibration > 0, let store = trainStore else { return }
        let n = train.images.count, b = min(options.batchSize, n)
        for k in 0..<options.batchNormRecalibration {
            let images = (0..<b).map { (k * b + $0) % n }
            _ = model.encoder.forwardTraining(images: try store.batch(images), batchNorm: .batchStatistics)
        }
    }

    // MARK: Files

    private func writeModel() throws {
        try model.write(to: outputFolder, metadata: ["step": "\(state.step)", "bleu4": state.bestBLEU4.map { "\($0)" } ?? ""])
        onEvent(.modelWritten(step: state.step, path: outputFolder))
    }

    private func checkpoint() throws {
        state.logLength = try log?.length() ?? 0
        try TrainingCheckpoint.write(to: checkpointPath, model: model, options: options, state: state,
                                     decoderAdam: decoderAdam, encoderAdam: encoderAdam)
        onEvent(.checkpoint(step: state.step, path: checkpointPath))
        if let abort = abortAfterCheckpoint, state.step >= abort { throw SimulatedKill() }
    }
}

/// Thrown by the `abortAfterCheckpoint` test hook.
struct SimulatedKill: Error {}
