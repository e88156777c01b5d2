import ArgumentParser
import CaptionSupport
import Foundation
import NN
import TensorCore
import Video

/// `caption video train --data DIR --out WEIGHTS_DIR [...]`
struct VideoTrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a video autoencoder; writes checkpoints and finally a loadable model folder.",
        discussion: """
            Reads every sequence of --data into memory (pixels as bytes), trains with Adam, gradient clipping by \
            norm and, for conditional decoders, teacher forcing or scheduled sampling. Writes \
            WEIGHTS_DIR/checkpoint.safetensors atomically every --checkpoint-every steps; --resume continues from \
            it exactly (architecture and hyper-parameters come from the checkpoint; --epochs/--max-steps may \
            extend the run). At the end writes config.json, model.safetensors and anomaly.json (the training \
            reconstruction-error distribution) into WEIGHTS_DIR and prints a JSON summary. Ctrl-C stops after \
            the current step, checkpoints and writes the model folder as it is.
            """
    )

    @Option(name: .long, help: "Training data: one sequence per subfolder (or video file).")
    var data: String?

    @Option(name: .long, help: "Instead of --data: generate this many moving-digit sequences in memory (as `caption video synth` would).")
    var synthetic: Int?

    @Option(name: .long, help: "Seed of the --synthetic sequences.")
    var syntheticSeed: UInt64 = 1

    @Option(name: .long, help: "Output model folder.")
    var out: String

    @Option(name: .long, help: "Validation data, evaluated (free-running) at the end of each epoch.")
    var val: String?

    @Flag(name: .long, help: "Continue from WEIGHTS_DIR/checkpoint.safetensors.")
    var resume = false

    // Model
    @Option(name: .long, help: "Frame representation: pixels or features (the captioning encoder's pooled vector).")
    var input: VideoModelConfig.InputKind = .pixels
    @Option(name: .long, help: "Frame side in pixels (frames are resized).")
    var size: Int = 64
    @Option(name: .long, help: "1 (gray) or 3 (RGB).")
    var channels: Int = 1
    @Option(name: .long, help: "Captioning model folder whose CNN encoder makes the features (--input features).")
    var encoderWeights: String?
    @Option(name: .long, help: "Recurrent cell: lstm, gru, rnn_tanh or rnn_relu.")
    var cell: VideoModelConfig.CellKind = .lstm
    @Option(name: .long, help: "Encoder hidden size H (decoders: H, or 2H when bidirectional).")
    var hidden: Int = 256
    @Option(name: .long, help: "Stacked layers (encoder and decoders).")
    var layers: Int = 1
    @Flag(name: .long, help: "Bidirectional encoder.")
    var bidirectional = false
    @Option(name: .long, help: "Frame embedding width E (0: frames go straight into the RNNs).")
    var embedding: Int = 256
    @Option(name: .long, help: "Reconstruction decoder: conditional, unconditioned or none.")
    var reconstruction: VideoModelConfig.DecoderKind = .unconditioned
    @Option(name: .long, help: "Future predictor: conditional, unconditioned or none.")
    var future: VideoModelConfig.DecoderKind = .unconditioned
    @Flag(name: .long, help: "One readout (hidden → frame) shared by both decoders.")
    var sharedReadout = false
    @Option(name: .long, help: "Readout (hidden → frame): linear, or conv (linear to 16 × S/4 × S/4, then two upsampling 3×3 convolutions; pixels).")
    var readout: VideoModelConfig.ReadoutKind = .linear
    @Option(name: .long, help: "Frames the encoder reads (T).")
    var observedFrames: Int = 10
    @Option(name: .long, help: "Frames the future predictor outputs (K).")
    var futureFrames: Int = 10

    // Training
    @Option(name: .long, help: "Passes over the data (default 10).")
    var epochs: Int?
    @Option(name: .long, help: "Total optimiser steps (overrides --epochs).")
    var maxSteps: Int?
    /// The first spelling of `--max-steps`, still accepted.
    @Option(name: .customLong("steps"), help: .hidden)
    var steps: Int?
    @Option(name: .long, help: "Sequences per batch.")
    var batchSize: Int = 16
    @Option(name: .long, help: "Adam learning rate.")
    var lr: Float = 1e-3
    @Option(name: .long, help: "Cosine-decay the learning rate to this by the last step.")
    var finalLr: Float?
    @Option(name: .long, help: "Weight of the reconstruction loss in the composite objective (the future loss has weight 1).")
    var reconstructionWeight: Float = 1
    @Option(name: .long, help: "Clip the global gradient norm to this (0: no clipping).")
    var clipNorm: Float = 100
    @OptionGroup var sampling: SamplingOptions
    @Flag(name: .long, help: "Feed Bernoulli-sampled frames (not probabilities) when a decoder reads its own output.")
    var sampleFrames = false
    @Option(name: .long, help: "Truncated BPTT: K1,K2 (backpropagate K2 steps every K1 steps).")
    var tbptt: String?
    @Option(name: .long, help: "Random seed (weights, batch order, sampling).")
    var seed: UInt64 = 1
    @Option(name: .long, help: "Checkpoint every N steps.")
    var checkpointEvery: Int = 500
    @Option(name: .long, help: "Log every N steps.")
    var logEvery: Int = 50
    @Option(name: .long, help: "LSTM forget-gate bias at initialisation.")
    var forgetBias: Float = 1
    @Flag(name: .long, inversion: .prefixedNo, help: "Start the readouts at the training data's mean frame.")
    var meanFrameBias = true
    @Flag(name: .long, help: "Start the readouts' weights at zero (no random speckle over the first outputs).")
    var zeroReadout = false
    @Flag(name: .long, help: "Store model.safetensors as F16 (half the size; the weights are rounded before the anomaly statistics are measured). Checkpoints stay F32.")
    var f16 = false
    @Option(name: .long, help: "Training sequences measured for the anomaly statistics.")
    var anomalySequences: Int = 512
    @OptionGroup var log: LogOptions

    /// `--max-steps` under either spelling.
    var stepLimit: Int? { maxSteps ?? steps }

    func validate() throws {
        guard (data == nil) != (synthetic == nil) else { throw ValidationError("give either --data DIR or --synthetic N") }
        if let synthetic, synthetic < 1 { throw ValidationError("--synthetic must be at least 1") }
        if maxSteps != nil && steps != nil { throw ValidationError("give --max-steps or --steps (its old spelling), not both") }
        guard logEvery >= 1 else { throw ValidationError("--log-every must be at least 1, got \(logEvery)") }
        try sampling.requireSchedule()
    }

    func modelConfig() -> VideoModelConfig {
        VideoModelConfig(input: input, frameSize: size, channels: channels, cell: cell, hiddenSize: hidden, layers: layers,
                         bidirectional: bidirectional, embeddingSize: embedding, reconstruction: reconstruction, future: future,
                         sharedReadout: sharedReadout, readout: readout, observedFrames: observedFrames, futureFrames: futureFrames)
    }

    func trainingOptions() throws -> VideoTrainingOptions {
        var truncation: [Int]? = nil
        if let tbptt {
            let parts = tbptt.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard (parts.count == 1 || parts.count == 2), let k1 = parts[0], let k2 = parts.last!, k1 >= 1, k2 >= k1 else {
                throw ValidationError("--tbptt must be K1,K2 with 1 ≤ K1 ≤ K2 (or one K for K,K)")
            }
            truncation = [k1, k2]
        }
        let options = VideoTrainingOptions(
            batchSize: batchSize, epochs: epochs ?? 10, steps: stepLimit, learningRate: lr, finalLearningRate: finalLr,
            clipNorm: clipNorm > 0 ? clipNorm : nil,
            scheduledSampling: sampling.schedule(sampleModelToken: sampleFrames)
                ?? ScheduledSampling(kind: .none, sampleModelToken: sampleFrames),
            truncation: truncation, seed: seed, checkpointEvery: checkpointEvery, anomalySequences: anomalySequences,
            forgetGateBias: forgetBias, outputBiasFromData: meanFrameBias, zeroReadout: zeroReadout,
            reconstructionWeight: reconstructionWeight == 1 ? nil : reconstructionWeight)
        if let problem = options.problems().first { throw ValidationError(problem) }
        return options
    }

    func run() throws {
        log.apply()
        HeapPolicy.retainFreedMemory()  // every step allocates the same temporaries: reuse their pages
        let job = VideoTrainingJob(
            data: data.map { .folder($0) } ?? .synthetic(count: synthetic!, seed: syntheticSeed), validation: val.map { .folder($0) },
            out: out, config: modelConfig(), options: try trainingOptions(),
            resume: resume ? VideoTrainingJob.Resume(epochs: epochs, steps: stepLimit) : nil, logEvery: logEvery, half: f16,
            encoderWeights: encoderWeights, featureEncoder: featureFrameEncoder)
        let training = VideoTraining(job)
        let progress = VideoTrainingProgress()
        training.onEvent = { progress.handle($0) }
        let stop = StopOnSignal(label: "video train") { training.requestStop() }
        defer { stop.cancel() }
        let result: VideoTrainingResult
        do { result = try training.run() } catch {
            progress.display.finish()
            throw error
        }
        progress.display.finish()
        if result.interrupted { Log.info("video train: stopped on request after step \(result.steps); --resume continues") }
        Log.info(String(format: "video train: wrote %@ (%d steps, %.0f s of training)", out, result.steps, result.seconds))
        struct Summary: Encodable {
            let out: String, steps: Int, seconds: Double, parameters: Int
            let anomaly: AnomalyStatistics?
        }
        try JSONOutput.print(Summary(out: out, steps: result.steps, seconds: (result.seconds * 10).rounded() / 10,
                                     parameters: result.model.parameterCount, anomaly: result.anomaly))
    }
}

/// Renders `caption video train`'s events: a report line every --log-every steps and a line per validation; on a
/// terminal, a progress bar with ETA between them. Nothing with --quiet.
final class VideoTrainingProgress {
    /// No periodic plain lines: the reports are the log.
    let display = ProgressDisplay(plainInterval: nil)
    private var started = Date(), firstStep = 0

    func handle(_ event: VideoTrainingEvent) {
        switch event {
        case .noCheckpoint(let path):
            display.line("video train: no checkpoint at \(path); starting afresh")
        case .dataLoaded(let sequences, let source, let seconds):
            display.line(String(format: "video train: %d sequences from %@ in %.1f s", sequences, source, seconds))
        case .started(let step, let total, let batchSize, let perEpoch, let parameters, let resumed):
            if resumed { display.line("video train: resumed at step \(step) of \(total)") }
            display.line("video train: \(parameters) parameters (\(String(format: "%.1f", Double(parameters) * 4 / 1e6)) MB), "
                         + "\(total) steps of \(batchSize) sequences, \(perEpoch) per epoch")
            started = Date(); firstStep = step
        case .step(let p):
            let done = p.step - firstStep
            let eta = done > 0 ? Date().timeIntervalSince(started) / Double(done) * Double(p.totalSteps - p.step) : 0
            display.update("step \(p.step)/\(p.totalSteps)  epoch \(p.epoch + 1)  ETA \(ProgressDisplay.clock(eta))",
                           done: p.step, total: p.totalSteps)
        case .report(let r):
            display.line(String(format: "step %d/%d  epoch %d  loss %.2f (rec %.2f, fut %.2f)  |g| %.1f  ε %.3f  lr %.2e  %.1f seq/s",
                                r.step, r.totalSteps, r.epoch + 1, r.loss, r.reconstruction, r.future, r.gradientNorm,
                                r.teacherProbability, r.learningRate, r.sequencesPerSecond))
        case .validation(_, let report):
            display.line(String(format: "validation: reconstruction %.2f, future %@ (copy-last %.2f / %@)",
                                report.reconstruction.model ?? .nan, report.future?.model.map { String(format: "%.2f", $0) } ?? "-",
                                report.reconstruction.copyLast, report.future.map { String(format: "%.2f", $0.copyLast) } ?? "-"))
        case .checkpoint, .finished:
            break
        }
    }
}
