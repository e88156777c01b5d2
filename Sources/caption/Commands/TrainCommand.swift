import ArgumentParser
import Captioning
import CaptionMetrics
import CaptionSupport
import CaptionTraining
import Foundation
import NN
import TensorCore
import Vision

/// `caption train --data DIR --out WEIGHTS_DIR [--resume] [--epochs N] [--batch-size B] [--scheduled-sampling …] …`
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train (or fine-tune) a captioning model on a COCO-style folder.",
        discussion: """
            Writes the model folder (config.json, vocab.json, encoder.safetensors, decoder.safetensors: the weights \
            with the best validation BLEU-4) into --out, and under --out/training/ an atomic checkpoint (every epoch \
            and every --checkpoint-every steps) and log.jsonl (one JSON object per step and per validation). \
            --resume continues a stored run exactly, with its stored options (only --epochs, --max-steps, \
            --checkpoint-every and --val-every may be given again). Ctrl-C stops after the current step and \
            checkpoints. Prints a JSON summary on stdout. See README, "Training".
            """
    )

    // Data and output
    @Option(name: .long, help: "COCO-style dataset folder.")
    var data: String
    @Option(name: .long, help: "Output model folder (checkpoints and the log go to OUT/training/).")
    var out: String
    @Flag(name: .long, help: "Continue the run stored in --out.")
    var resume = false
    @Option(name: .long, help: "Training split (default train).")
    var trainSplit: String?
    @Option(name: .long, help: "Validation split, or \"none\" (default val, when present).")
    var valSplit: String?
    @Option(name: .long, help: "Drop captions with more words (default 50).")
    var maxCaptionWords: Int?
    @Option(name: .long, help: "Words seen at most this often become <unk> (default 5; new vocabularies).")
    var minWordFreq: Int?
    @Option(name: .long, help: "0: batches of (image, caption) pairs (default); K: batches of images with K captions each.")
    var captionsPerImage: Int?

    // Schedule
    @Option(name: .long, help: "Epochs (default 20).")
    var epochs: Int?
    @Option(name: .long, help: "Stop after this many steps in total.")
    var maxSteps: Int?
    @Option(name: .long, help: "Pairs (or images, with --captions-per-image) per batch (default 32).")
    var batchSize: Int?
    @Option(name: .long, help: "Seed of weights, batch order, dropout and sampling (default 1).")
    var seed: UInt64?

    // Model (new models)
    @Option(name: .long, help: "Fine-tune this model folder (architecture and vocabulary kept).")
    var initFrom: String?
    @Option(name: .long, help: "Pretrained CNN (model folder or torchvision safetensors) under a new decoder.")
    var encoderWeights: String?
    @Option(name: .long, help: "New CNN: compact (default), resnet18…152, vgg16[_bn], vgg19[_bn].")
    var encoder: String?
    @Option(name: .long, help: "Compact CNN channels per layer (default 32,32,64,64,128,128,256).")
    var encoderChannels: String?
    @Option(name: .long, help: "Compact CNN strides per layer (default 2,1,2,1,2,1,1).")
    var encoderStrides: String?
    @Option(name: .long, help: "Input size in pixels (default 96).")
    var imageSize: Int?
    @Option(name: .long, help: "Adaptive-pool the CNN map to N×N (default: the CNN's own grid).")
    var pool: Int?
    @Option(name: .long, help: "Attention MLP width (default 512).")
    var attentionDim: Int?
    @Option(name: .long, help: "Word embedding size (default 512).")
    var embedDim: Int?
    @Option(name: .long, help: "LSTM size (default 512).")
    var decoderDim: Int?
    @Option(name: .long, help: "Dropout before fc (default 0.5).")
    var dropout: Float?
    @Option(name: .long, help: "Attention nonlinearity: relu (tutorial, default) or tanh (paper).")
    var attention: AttentionDecoderConfig.AttentionActivation?
    @Option(name: .long, help: "Context gate: vector (tutorial, default) or scalar (paper).")
    var gate: GateArgument?
    @Option(name: .long, help: "The model's default caption length limit (default 50).")
    var maxLength: Int?

    // Optimisation
    @Option(name: .long, help: "Decoder learning rate (default 4e-4).")
    var lr: Float?
    @Option(name: .long, help: "Encoder learning rate when fine-tuned (default 1e-4).")
    var encoderLr: Float?
    @Option(name: .long, help: "Adam weight decay (default 0).")
    var weightDecay: Float?
    @Option(name: .long, help: "Weight of the doubly stochastic attention term (default 1).")
    var alphaC: Float?
    @Option(name: .long, help: ArgumentHelp("Weight of attention supervision from the object boxes of a synthetic set (default 0: off).",
                                            discussion: "Colour and shape words are pulled to attend inside the box of the object they name."))
    var attentionSupervision: Float?
    @Option(name: .long, help: "Clip gradients to this global norm (default 5; 0: no clipping).")
    var clipNorm: Float?
    @Option(name: .long, help: "Clip each gradient element to [-X, X] instead.")
    var clipValue: Float?
    /// The first spelling of `--clip-norm 0`, still accepted.
    @Flag(name: .long, help: .hidden)
    var noClip = false
    @Flag(name: .long, help: "Train the encoder too (default for a new CNN).")
    var fineTuneEncoder = false
    @Flag(name: .long, help: "Keep the encoder frozen (default with --encoder-weights / --init-from); features are cached.")
    var freezeEncoder = false
    @Option(name: .long, help: "Fine-tune only from this module on (e.g. layer2).")
    var fineTuneFrom: String?

    // Scheduled sampling
    @OptionGroup var sampling: SamplingOptions
    @Flag(name: .long, help: "Sample the model's token from its softmax instead of taking the argmax.")
    var ssSample = false

    // Validation, decay, stopping, checkpoints, cache
    @Option(name: .long, help: "Validation beam size (default 1, greedy).")
    var valBeam: Int?
    @Option(name: .long, help: "Validate on the first N images (default 500; 0 = all).")
    var valImages: Int?
    @Option(name: .long, help: "Also validate every N steps.")
    var valEvery: Int?
    @Option(name: .long, help: "LR factor on plateau (default 0.8).")
    var lrDecay: Float?
    @Option(name: .long, help: "Validations without a better BLEU-4 before each LR decay (default 8; 0 = never).")
    var lrPatience: Int?
    @Option(name: .long, help: "Validations without a better BLEU-4 before stopping (default 20; 0 = never).")
    var earlyStop: Int?
    @Option(name: .long, help: "Training-mode passes that re-estimate a fine-tuned encoder's BatchNorm statistics before each validation (default 20; 0 = off).")
    var bnRecalibration: Int?
    @Option(name: .long, help: "Also checkpoint every N steps.")
    var checkpointEvery: Int?
    @Option(name: .long, help: "Memory for cached features / decoded images, MB (default 2048).")
    var cacheMemory: Int?
    @Option(name: .long, help: "Disk for cached features beyond memory, MB (default 10240).")
    var cacheDisk: Int?

    @OptionGroup var log: LogOptions

    /// Flags that a resumed run may not change (the stored options rule).
    private var modelAndOptimisationFlagsGiven: [String] {
        let given: [(String, Bool)] = [
            ("--train-split", trainSplit != nil), ("--val-split", valSplit != nil),
            ("--max-caption-words", maxCaptionWords != nil), ("--min-word-freq", minWordFreq != nil),
            ("--captions-per-image", captionsPerImage != nil), ("--batch-size", batchSize != nil), ("--seed", seed != nil),
            ("--init-from", initFrom != nil), ("--encoder-weights", encoderWeights != nil), ("--encoder", encoder != nil),
            ("--encoder-channels", encoderChannels != nil), ("--encoder-strides", encoderStrides != nil),
            ("--image-size", imageSize != nil), ("--pool", pool != nil), ("--attention-dim", attentionDim != nil),
            ("--embed-dim", embedDim != nil), ("--decoder-dim", decoderDim != nil), ("--dropout", dropout != nil),
            ("--attention", attention != nil), ("--gate", gate != nil), ("--max-length", maxLength != nil),
            ("--lr", lr != nil), ("--encoder-lr", encoderLr != nil), ("--weight-decay", weightDecay != nil),
            ("--alpha-c", alphaC != nil), ("--attention-supervision", attentionSupervision != nil),
            ("--clip-norm", clipNorm != nil || noClip), ("--clip-value", clipValue != nil),
            ("--fine-tune-encoder", fineTuneEncoder), ("--freeze-encoder", freezeEncoder),
            ("--fine-tune-from", fineTuneFrom != nil), ("--ss-sample", ssSample),
            ("--val-beam", valBeam != nil), ("--val-images", valImages != nil), ("--lr-decay", lrDecay != nil),
            ("--lr-patience", lrPatience != nil), ("--early-stop", earlyStop != nil), ("--bn-recalibration", bnRecalibration != nil),
            ("--cache-memory", cacheMemory != nil), ("--cache-disk", cacheDisk != nil),
        ]
        return given.filter(\.1).map(\.0) + sampling.given
    }

    func validate() throws {
        if resume, let flag = modelAndOptimisationFlagsGiven.first {
            throw ValidationError("\(flag) cannot be changed with --resume (the stored run's options are used; only --epochs, --max-steps, --checkpoint-every and --val-every may be given)")
        }
        if [clipNorm != nil, clipValue != nil, noClip].filter({ $0 }).count > 1 {
            throw ValidationError("give at most one of --clip-norm, --clip-value and --no-clip (--clip-norm 0)")
        }
        try sampling.requireSchedule(sampleFlag: ssSample ? "--ss-sample" : nil)
        if fineTuneEncoder && freezeEncoder { throw ValidationError("give --fine-tune-encoder or --freeze-encoder, not both") }
        if initFrom != nil && encoderWeights != nil { throw ValidationError("give --init-from or --encoder-weights, not both") }
    }

    func options() throws -> TrainingOptions {
        var o = TrainingOptions()
        if let trainSplit { o.trainSplit = trainSplit }
        if let valSplit { o.validationSplit = valSplit == "none" ? nil : valSplit }
        if let maxCaptionWords { o.maxCaptionWords = maxCaptionWords }
        if let minWordFreq { o.minWordFrequency = minWordFreq }
        if let captionsPerImage { o.captionsPerImage = captionsPerImage }
        if let epochs { o.epochs = epochs }
        o.maxSteps = maxSteps
        if let batchSize { o.batchSize = batchSize }
        if let seed { o.seed = seed }
        if let lr { o.learningRate = lr }
        if let encoderLr { o.encoderLearningRate = encoderLr }
        if let weightDecay { o.weightDecay = weightDecay }
        if let alphaC { o.alphaC = alphaC }
        if let attentionSupervision { o.attentionSupervision = attentionSupervision }
        if let clipNorm { o.clipping = clipNorm == 0 ? .none : .norm(clipNorm) }
        if let clipValue { o.clipping = .value(clipValue) }
        if noClip { o.clipping = .none }
        // A new CNN must learn; a pretrained one stays frozen unless asked.
        o.fineTuneEncoder = fineTuneEncoder || (!freezeEncoder && initFrom == nil && encoderWeights == nil)
        o.fineTuneFrom = fineTuneFrom
        if let schedule = sampling.schedule(sampleModelToken: ssSample) { o.scheduledSampling = schedule }
        if let valBeam { o.validationBeam = valBeam }
        if let valImages { o.validationImages = valImages }
        o.validateEverySteps = valEvery
        if let lrDecay { o.lrDecayFactor = lrDecay }
        if let lrPatience { o.lrPatience = lrPatience }
        if let earlyStop { o.earlyStoppingPatience = earlyStop }
        if let bnRecalibration { o.batchNormRecalibration = bnRecalibration }
        o.checkpointEverySteps = checkpointEvery
        if let cacheMemory { o.cacheMemoryBytes = cacheMemory << 20 }
        if let cacheDisk { o.cacheDiskBytes = cacheDisk << 20 }
        return o
    }

    func spec() throws -> ModelSpec {
        var s = ModelSpec()
        func ints(_ text: String, _ flag: String) throws -> [Int] {
            let values = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard !values.isEmpty, values.allSatisfy({ ($0 ?? 0) > 0 }) else {
                throw ValidationError("\(flag) must be comma-separated positive integers, got \"\(text)\"")
            }
            return values.map { $0! }
        }
        let name = encoder ?? "compact"
        guard var arch = Architecture(name: name) else {
            throw ValidationError("--encoder: unknown architecture \"\(name)\" (compact, resnet18…152, vgg16[_bn], vgg19[_bn])")
        }
        if case .compact(var c) = arch {
            if let encoderChannels { c.channels = try ints(encoderChannels, "--encoder-channels") }
            if let encoderStrides { c.strides = try ints(encoderStrides, "--encoder-strides") }
            guard c.channels.count == c.strides.count else {
                throw ValidationError("--encoder-channels and --encoder-strides need one entry per layer (\(c.channels.count) vs \(c.strides.count))")
            }
            arch = .compact(c)
        } else if encoderChannels != nil || encoderStrides != nil {
            throw ValidationError("--encoder-channels and --encoder-strides are for the compact encoder")
        }
        s.architecture = arch
        if let imageSize { guard imageSize >= 8 else { throw ValidationError("--image-size must be at least 8") }; s.imageSize = imageSize }
        if let pool { guard pool >= 1 else { throw ValidationError("--pool must be positive") }; s.pool = GridSize(height: pool, width: pool) }
        for (value, flag) in [(attentionDim, "--attention-dim"), (embedDim, "--embed-dim"), (decoderDim, "--decoder-dim"), (maxLength, "--max-length")] {
            if let value, value < 1 { throw ValidationError("\(flag) must be positive") }
        }
        if let attentionDim { s.attentionDim = attentionDim }
        if let embedDim { s.embedDim = embedDim }
        if let decoderDim { s.decoderDim = decoderDim }
        if let maxLength { s.maxLength = maxLength }
        if let dropout { guard dropout >= 0 && dropout < 1 else { throw ValidationError("--dropout must be in [0, 1)") }; s.dropout = dropout }
        if let attention { s.attention = attention }
        if let gate { s.gate = gate.gate }
        return s
    }

    func run() throws {
        log.apply()
        HeapPolicy.retainFreedMemory()  // every step allocates the same temporaries: reuse their pages
        let trainer: Trainer
        if resume {
            trainer = try Trainer.resume(data: data, out: out) { o in
                if let epochs { o.epochs = epochs }
                if let maxSteps { o.maxSteps = maxSteps }
                if let checkpointEvery { o.checkpointEverySteps = checkpointEvery }
                if let valEvery { o.validateEverySteps = valEvery }
            }
        } else {
            trainer = try Trainer(data: data, out: out, options: try options(), spec: try spec(),
                                  initialModel: initFrom, encoderWeights: encoderWeights)
        }
        let progress = TrainingProgress()
        trainer.onEvent = { progress.handle($0) }
        let stop = StopOnSignal(label: "train") { trainer.requestStop() }
        defer { stop.cancel() }
        let summary: TrainingSummary
        do { summary = try trainer.run() } catch {
            progress.display.finish()
            throw error
        }
        progress.display.finish()
        if summary.interrupted { Log.info("train: stopped on request after step \(summary.steps); --resume continues") }
        try JSONOutput.print(TrainSummary(summary, out: out))
    }
}

/// `caption train`'s result line on stdout.
struct TrainSummary: Encodable {
    let out: String
    let steps: Int, epochs: Int
    let bestBLEU4: JSONNumber, bestStep: JSONNumber
    let stoppedEarly: Bool, interrupted: Bool
    let trainingSeconds: JSONNumber, captionsPerSecond: JSONNumber

    init(_ s: TrainingSummary, out: String) {
        // Six significant digits: the run's timings and scores, not float noise.
        func rounded(_ x: Double?) -> JSONNumber { JSONNumber(x.flatMap { Double(String(format: "%.6g", $0)) }) }
        self.out = out
        steps = s.steps; epochs = s.epochs
        bestBLEU4 = rounded(s.bestBLEU4); bestStep = JSONNumber(s.bestStep)
        stoppedEarly = s.stoppedEarly; interrupted = s.interrupted
        trainingSeconds = rounded(s.trainingSeconds); captionsPerSecond = rounded(s.captionsPerSecond)
    }

    enum CodingKeys: String, CodingKey {
        case out, steps, epochs, bestBLEU4 = "best_bleu4", bestStep = "best_step", stoppedEarly = "stopped_early"
        case interrupted, trainingSeconds = "training_seconds", captionsPerSecond = "captions_per_s"
    }
}

/// Renders `caption train`'s events through the progress display: a bar with ETA on a terminal, plain lines every
/// 10 s otherwise; validations, checkpoints and model writes get their own line. Nothing with --quiet.
final class TrainingProgress {
    let display = ProgressDisplay(plainInterval: 10)
    private var totalSteps = 1, firstStep = 0, epochs = 1
    private var started = Date()
    private var stepSeconds = 0.0, captions = 0

    func handle(_ event: TrainingEvent) {
        switch event {
        case .message(let text): display.line(text)
        case .preparing(let what, let done, let total):
            display.update("caching \(what): \(done)/\(total)", force: done == total)
            if done == total { display.finish() }
        case .started(let step, let total, let perEpoch, let epochs):
            totalSteps = max(total, 1); firstStep = step; self.epochs = epochs
            started = Date()
            display.line(step > 0 ? "train: resuming at step \(step) of \(total)" : "train: \(total) steps (\(epochs) epochs of \(perEpoch) batches)")
        case .step(let r):
            stepSeconds += r.seconds; captions += r.captions
            let done = r.step - firstStep
            let elapsed = Date().timeIntervalSince(started)
            let eta = done > 0 ? elapsed / Double(done) * Double(totalSteps - r.step) : 0
            let rate = stepSeconds > 0 ? Double(captions) / stepSeconds : 0
            let text = String(format: "epoch %d/%d step %d/%d loss %.4f ε %.3f lr %.2e %.0f cap/s ETA %@",
                              r.epoch + 1, epochs, r.step, totalSteps, r.loss, r.epsilon, r.learningRate, rate, ProgressDisplay.clock(eta))
            display.update(text, done: r.step, total: totalSteps, force: r.step == totalSteps)
        case .validationStarted(let step):
            display.status("validating at step \(step)…")
        case .validation(let v):
            display.line(String(format: "validation at step %d: BLEU-4 %.4f CIDEr-D %.4f loss %.4f (%d images, beam %d)%@%@", v.step,
                                v.bleu4, v.ciderD, v.loss, v.images, v.beam, v.improved ? " best" : " (best \(String(format: "%.4f", v.bestBLEU4)))",
                                v.stops ? ", early stop" : ""))
        case .checkpoint(let step, _):
            if !display.terminal { display.line("checkpoint at step \(step)") }
        case .modelWritten(let step, let path):
            display.line("model (step \(step)) written to \(path)")
        }
    }
}
