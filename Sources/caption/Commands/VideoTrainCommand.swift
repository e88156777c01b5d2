import ArgumentParser
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
            it exactly (architecture and hyper-parameters come from the checkpoint; --epochs/--steps may extend \
            the run). At the end writes config.json, model.safetensors and anomaly.json (the training \
            reconstruction-error distribution) into WEIGHTS_DIR and prints a JSON summary.
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
    var input: String = "pixels"
    @Option(name: .long, help: "Frame side in pixels (frames are resized).")
    var size: Int = 64
    @Option(name: .long, help: "1 (gray) or 3 (RGB).")
    var channels: Int = 1
    @Option(name: .long, help: "Captioning model folder whose CNN encoder makes the features (--input features).")
    var encoderWeights: String?
    @Option(name: .long, help: "Recurrent cell: lstm, gru, rnn_tanh or rnn_relu.")
    var cell: String = "lstm"
    @Option(name: .long, help: "Encoder hidden size H (decoders: H, or 2H when bidirectional).")
    var hidden: Int = 256
    @Option(name: .long, help: "Stacked layers (encoder and decoders).")
    var layers: Int = 1
    @Flag(name: .long, help: "Bidirectional encoder.")
    var bidirectional = false
    @Option(name: .long, help: "Frame embedding width E (0: frames go straight into the RNNs).")
    var embedding: Int = 256
    @Option(name: .long, help: "Reconstruction decoder: conditional, unconditioned or none.")
    var reconstruction: String = "unconditioned"
    @Option(name: .long, help: "Future predictor: conditional, unconditioned or none.")
    var future: String = "unconditioned"
    @Flag(name: .long, help: "One readout (hidden → frame) shared by both decoders.")
    var sharedReadout = false
    @Option(name: .long, help: "Readout (hidden → frame): linear, or conv (linear to 16 × S/4 × S/4, then two upsampling 3×3 convolutions; pixels).")
    var readout: String = "linear"
    @Option(name: .long, help: "Frames the encoder reads (T).")
    var observedFrames: Int = 10
    @Option(name: .long, help: "Frames the future predictor outputs (K).")
    var futureFrames: Int = 10

    // Training
    @Option(name: .long, help: "Passes over the data.")
    var epochs: Int?
    @Option(name: .long, help: "Total optimiser steps (overrides --epochs).")
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
    @Option(name: .long, help: "Conditional decoders: none (teacher forcing), linear, exponential or inverse-sigmoid.")
    var scheduledSampling: String = "none"
    @Option(name: .long, help: "Schedule parameter k (linear start, exponential base, inverse-sigmoid scale).")
    var samplingK: Double?
    @Option(name: .long, help: "Linear schedule: decrease per step.")
    var samplingC: Double = 1e-4
    @Option(name: .long, help: "Lowest teacher-forcing probability.")
    var samplingMin: Double = 0
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
    @Flag(name: .long, help: "No progress on stderr.")
    var quiet = false

    func validate() throws {
        guard (data == nil) != (synthetic == nil) else { throw ValidationError("give either --data DIR or --synthetic N") }
        if let synthetic, synthetic < 1 { throw ValidationError("--synthetic must be at least 1") }
    }

    func modelConfig() throws -> VideoModelConfig {
        guard let input = VideoModelConfig.InputKind(rawValue: input) else { throw ValidationError("--input must be pixels or features") }
        guard let cell = VideoModelConfig.CellKind(rawValue: cell) else { throw ValidationError("--cell must be lstm, gru, rnn_tanh or rnn_relu") }
        guard let rec = VideoModelConfig.DecoderKind(rawValue: reconstruction),
              let fut = VideoModelConfig.DecoderKind(rawValue: future) else {
            throw ValidationError("--reconstruction and --future must be conditional, unconditioned or none")
        }
        guard let readoutKind = VideoModelConfig.ReadoutKind(rawValue: readout) else {
            throw ValidationError("--readout must be linear or conv")
        }
        return VideoModelConfig(input: input, frameSize: size, channels: channels, cell: cell, hiddenSize: hidden,
                                layers: layers, bidirectional: bidirectional, embeddingSize: embedding, reconstruction: rec,
                                future: fut, sharedReadout: sharedReadout, readout: readoutKind, observedFrames: observedFrames,
                                futureFrames: futureFrames)
    }

    func trainingOptions() throws -> VideoTrainingOptions {
        guard let kind = ScheduledSampling.Kind(rawValue: scheduledSampling) else {
            throw ValidationError("--scheduled-sampling must be none, linear, exponential or inverse-sigmoid")
        }
        var truncation: [Int]? = nil
        if let tbptt {
            let parts = tbptt.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard (parts.count == 1 || parts.count == 2), let k1 = parts[0], let k2 = parts.last!, k1 >= 1, k2 >= k1 else {
                throw ValidationError("--tbptt must be K1,K2 with 1 ≤ K1 ≤ K2 (or one K for K,K)")
            }
            truncation = [k1, k2]
        }
        let options = VideoTrainingOptions(
            batchSize: batchSize, epochs: epochs ?? 10, steps: steps, learningRate: lr, finalLearningRate: finalLr,
            clipNorm: clipNorm > 0 ? clipNorm : nil,
            scheduledSampling: ScheduledSampling(kind: kind, k: samplingK, c: samplingC, minimum: samplingMin,
                                                 sampleModelToken: sampleFrames),
            truncation: truncation, seed: seed, checkpointEvery: checkpointEvery, anomalySequences: anomalySequences,
            forgetGateBias: forgetBias, outputBiasFromData: meanFrameBias, zeroReadout: zeroReadout,
            reconstructionWeight: reconstructionWeight == 1 ? nil : reconstructionWeight)
        if let problem = options.problems().first { throw ValidationError(problem) }
        return options
    }

    func run() throws {
        Log.quiet = quiet
        HeapPolicy.retainFreedMemory()  // every step allocates the same temporaries: reuse their pages
        let checkpointPath = out + "/checkpoint.safetensors"
        var config = try modelConfig()
        var options = try trainingOptions()
        let resuming = resume && FileManager.default.fileExists(atPath: checkpointPath)
        if resume && !resuming { Log.info("video train: no checkpoint at \(checkpointPath); starting afresh") }
        if resuming {
            do { (config, options) = try VideoTrainer.checkpointConfig(checkpointPath) } catch let error as VideoError {
                throw CaptionError(error.description)
            }
        }

        // Data
        let started = Date()
        var frameEncoder: FrameEncoder? = nil
        if config.input == .features {
            guard let encoderPath = encoderWeights ?? config.featureEncoder else {
                throw ValidationError("--input features needs --encoder-weights DIR")
            }
            let encoder = try featureFrameEncoder(encoderPath)
            config.featureDimension = encoder.dimension
            config.featureEncoder = encoderPath
            frameEncoder = encoder
        }
        if let problem = config.problems().first { throw ValidationError(problem) }
        func load(_ folder: String) throws -> VideoDataset {
            do {
                if let frameEncoder {
                    return try VideoDataset.loadFeatures(folder: folder, encoder: frameEncoder, minimumLength: config.framesNeeded)
                }
                return try VideoDataset.loadPixels(folder: folder, size: config.frameSize, channels: config.channels,
                                                   minimumLength: config.framesNeeded)
            } catch let error as VideoError { throw CaptionError(error.description) } catch {
                throw CaptionError("\(error)")
            }
        }
        let dataset: VideoDataset
        let source: String
        if let data {
            dataset = try load(data)
            source = data
        } else {
            guard config.input == .pixels && config.frameSize == 64 && config.channels == 1 else {
                throw ValidationError("--synthetic makes 64×64 gray frames: use --input pixels --size 64 --channels 1")
            }
            let generator = MovingObjects(seed: syntheticSeed)
            guard generator.frames >= config.framesNeeded else {
                throw ValidationError("--synthetic sequences have \(generator.frames) frames, the model needs \(config.framesNeeded)")
            }
            dataset = VideoDataset.synthetic(generator, indices: 0..<synthetic!)
            source = "synthetic:\(synthetic!):seed=\(syntheticSeed)"
        }
        let validation = try val.map(load)
        Log.info(String(format: "video train: %d sequences from %@ in %.1f s", dataset.count, source, Date().timeIntervalSince(started)))

        // Model and trainer
        let model: VideoAutoencoder, trainer: VideoTrainer
        do {
            model = try VideoAutoencoder(config: config)
            trainer = try VideoTrainer(model: model, data: dataset, options: options)
            if !resuming { trainer.initializeModel() }
            if resuming {
                try trainer.resume(from: checkpointPath)
                trainer.extend(epochs: epochs, steps: steps)
                Log.info("video train: resumed at step \(trainer.state.step) of \(trainer.totalSteps)")
            }
            try VideoModelFolder.createFolderForCLI(out)
        } catch let error as VideoError { throw CaptionError(error.description) }
        Log.info("video train: \(model.parameterCount) parameters (\(String(format: "%.1f", Double(model.parameterCount) * 4 / 1e6)) MB), "
                 + "\(trainer.totalSteps) steps of \(trainer.batchSize) sequences, \(trainer.batchesPerEpoch) per epoch")

        // Loop
        var window = (loss: 0.0, reconstruction: 0.0, future: 0.0, norm: 0.0, count: 0)
        var windowStart = Date()
        let trainStart = Date()
        var lastEpoch = trainer.state.epoch
        while !trainer.isFinished {
            let progress = trainer.step()
            if let l = progress.losses {
                window.loss += l.total; window.reconstruction += l.reconstruction ?? 0; window.future += l.future ?? 0
            }
            window.norm += Double(progress.gradientNorm); window.count += 1
            if progress.step % logEvery == 0 || progress.step == progress.totalSteps {
                let n = Double(window.count), seconds = Date().timeIntervalSince(windowStart)
                Log.info(String(format: "step %d/%d  epoch %d  loss %.2f (rec %.2f, fut %.2f)  |g| %.1f  ε %.3f  lr %.2e  %.1f seq/s",
                                progress.step, progress.totalSteps, progress.epoch + 1, window.loss / n, window.reconstruction / n,
                                window.future / n, window.norm / n, progress.teacherProbability, progress.learningRate,
                                n * Double(trainer.batchSize) / max(seconds, 1e-9)))
                window = (0, 0, 0, 0, 0)
                windowStart = Date()
            }
            if progress.step % options.checkpointEvery == 0 || progress.step == progress.totalSteps {
                do { try trainer.saveCheckpoint(to: checkpointPath) } catch let error as VideoError { throw CaptionError(error.description) }
            }
            if let validation, trainer.state.epoch != lastEpoch || trainer.isFinished {
                lastEpoch = trainer.state.epoch
                if let report = try? VideoEvaluation.evaluate(model, validation) {
                    Log.info(String(format: "validation: reconstruction %.2f, future %@ (copy-last %.2f / %@)",
                                    report.reconstruction.model ?? .nan, report.future?.model.map { String(format: "%.2f", $0) } ?? "-",
                                    report.reconstruction.copyLast, report.future.map { String(format: "%.2f", $0.copyLast) } ?? "-"))
                }
            }
        }
        let trainSeconds = Date().timeIntervalSince(trainStart)

        // Anomaly statistics and the model folder
        if f16 { model.roundToHalfPrecision() }
        let count = min(options.anomalySequences, dataset.count)
        let indices = (0..<count).map { $0 * dataset.count / max(count, 1) }
        let errors = VideoEvaluation.sequenceErrors(model, dataset, indices: indices)
        let anomaly = errors.isEmpty ? nil : AnomalyStatistics(errors: errors, loss: config.loss)
        let summary = VideoTrainingSummary(data: source, sequences: dataset.count, steps: trainer.state.step,
                                           batchSize: trainer.batchSize, seconds: trainSeconds, options: trainer.options)
        do { try VideoModelFolder.save(model, anomaly: anomaly, training: summary, to: out, half: f16) } catch let error as VideoError {
            throw CaptionError(error.description)
        }
        Log.info(String(format: "video train: wrote %@ (%d steps, %.0f s of training)", out, trainer.state.step, trainSeconds))
        struct Summary: Encodable {
            let out: String, steps: Int, seconds: Double, parameters: Int
            let anomaly: AnomalyStatistics?
        }
        print(jsonLine(Summary(out: out, steps: trainer.state.step, seconds: (trainSeconds * 10).rounded() / 10,
                               parameters: model.parameterCount, anomaly: anomaly)))
    }
}

extension VideoModelFolder {
    /// Creates the output folder up front, so a bad --out fails before training.
    static func createFolderForCLI(_ folder: String) throws {
        do { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) } catch {
            throw VideoError(file: folder, "cannot create folder")
        }
    }
}
