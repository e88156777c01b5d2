import CaptionSupport
import ArgumentParser
import Foundation
import Imaging
import TensorCore
import Video

/// `caption video encode SEQ... [--weights DIR] [--format text|json]`
struct VideoEncodeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "encode",
        abstract: "Print each sequence's code vector and its anomaly score.",
        discussion: """
            Reads the first T frames (the model's observed length) of each sequence; the code is the encoder's \
            final state as the decoders receive it (h, and c for LSTMs, of every layer). The anomaly score is the \
            sequence's reconstruction error (mean per-frame loss, free-running) against the training sequences' \
            errors stored in the model folder: a z-score and a percentile. text: \
            SEQ<TAB>error<TAB>z<TAB>percentile<TAB>code values separated by spaces. json: one object per line, \
            {"sequence", "frames", "code", "reconstruction_error", "anomaly_score", "anomaly_percentile"}.
            """
    )

    @Argument(help: "Sequences: folders of frames or video files.")
    var sequences: [String]

    @OptionGroup var model: VideoModelOptions

    @Option(name: .long, help: "Output format: text or json.")
    var format: ResultFormat = .text

    func run() throws {
        let loaded = try model.load()
        let config = loaded.model.config
        var failed = false
        for path in sequences {
            do {
                let batch = try loaded.sequence(path, frames: config.observedFrames, atLeast: config.observedFrames)
                let inference = loaded.model.infer(batch)
                let (r, f) = VideoEvaluation.frameLosses(loaded.model, batch)
                let losses = (r ?? f ?? [[]])[0]
                let error = losses.reduce(0, +) / Double(max(losses.count, 1))
                let score = loaded.anomaly?.score(error)
                if format == .json {
                    struct Record: Encodable {
                        let sequence: String, frames: Int, code: [Float], reconstructionError: Double
                        let anomalyScore: Double?, anomalyPercentile: Double?
                        enum CodingKeys: String, CodingKey {
                            case sequence, frames, code, reconstructionError = "reconstruction_error"
                            case anomalyScore = "anomaly_score", anomalyPercentile = "anomaly_percentile"
                        }
                    }
                    try JSONOutput.print(Record(sequence: path, frames: config.observedFrames, code: inference.code.storage,
                                          reconstructionError: error, anomalyScore: score?.z, anomalyPercentile: score?.percentile))
                } else {
                    let code = inference.code.storage.map { String(format: "%.6g", $0) }.joined(separator: " ")
                    let z = score.map { String(format: "%.4f", $0.z) } ?? "nan"
                    let percentile = score.map { String(format: "%.1f", $0.percentile) } ?? "nan"
                    print("\(path)\t\(String(format: "%.4f", error))\t\(z)\t\(percentile)\t\(code)")
                }
            } catch {
                Log.error("\(error)")
                failed = true
            }
        }
        if failed { throw CaptionFailure() }
    }
}

/// `caption video reconstruct SEQ --out DIR [--weights DIR]`
struct VideoReconstructCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reconstruct",
        abstract: "Write the reconstructed and predicted frames of a sequence as PNGs, with per-frame errors.",
        discussion: """
            Reads the first T frames, and the next K when the sequence has them (to score the prediction). \
            Writes into DIR: input_NN.png (the T frames read), reconstruction_NN.png (frame NN as the \
            reconstruction decoder rebuilt it), prediction_NN.png (frame T+NN), truth_NN.png (the true future \
            frames, when present) and strip.png (rows: input, reconstruction, then true future and prediction), \
            each file written atomically. Prints one JSON object: per-frame losses of the reconstruction and the \
            prediction. A feature model writes frames.safetensors (input, reconstruction, prediction) instead.
            """
    )

    @Argument(help: "Sequence: a folder of frames or a video file.")
    var sequence: String

    @Option(name: .long, help: "Output folder (created if needed).")
    var out: String

    @OptionGroup var model: VideoModelOptions

    @Option(name: .long, help: "Upscale the PNGs by this integer factor (nearest neighbour).")
    var scale: Int = 1

    func validate() throws {
        guard (1...16).contains(scale) else { throw ValidationError("--scale must be in 1...16") }
    }

    func run() throws {
        let loaded = try model.load()
        let config = loaded.model.config
        let t = config.observedFrames, k = config.futureFrames
        let batch = try loaded.sequence(sequence, frames: t + (config.future == .none ? 0 : k), atLeast: t)
        let hasTruth = config.future != .none && batch.frameCount >= t + k
        let inference = loaded.model.infer(batch)
        let (r, f) = VideoEvaluation.frameLosses(loaded.model, batch)
        do { try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true) } catch {
            throw CaptionError(file: out, "cannot create folder")
        }
        let d = config.frameDimension
        func output(_ logits: Tensor?) -> Tensor? {
            guard var values = logits else { return nil }
            if config.loss == .bce { values.withUnsafeMutableBufferPointer { Kernels.sigmoid($0.count, $0.baseAddress!, $0.baseAddress!) } }
            return values
        }
        let reconstruction = output(inference.reconstruction), prediction = output(inference.future)
        let observed = Tensor(shape: [t, d], storage: Array(batch.frames.storage[0..<(t * d)]))
        let truth = hasTruth ? Tensor(shape: [k, d], storage: Array(batch.frames.storage[(t * d)..<((t + k) * d)])) : nil

        if config.input == .features {
            var writer = SafeTensorsWriter()
            writer.add("input", observed)
            if let reconstruction { writer.add("reconstruction", reconstruction.reshaped([t, d])) }
            if let prediction { writer.add("prediction", prediction.reshaped([k, d])) }
            if let truth { writer.add("truth", truth) }
            try writer.write(to: out + "/frames.safetensors")
        } else {
            var rows: [[RGBImage]] = []
            func write(_ frames: Tensor?, count: Int, prefix: String) throws {
                guard let frames else { return }
                var images: [RGBImage] = []
                try frames.withUnsafeBufferPointer { fb in
                    for i in 0..<count {
                        let image = upscale(FrameEncoder.image(fb.baseAddress! + i * d, size: config.frameSize,
                                                               channels: config.channels), by: scale)
                        try writePNG(image, out + String(format: "/%@_%02d.png", prefix, i))
                        images.append(image)
                    }
                }
                rows.append(images)
            }
            try write(observed, count: t, prefix: "input")
            try write(reconstruction, count: t, prefix: "reconstruction")
            try write(truth, count: k, prefix: "truth")
            try write(prediction, count: k, prefix: "prediction")
            try writePNG(strip(rows), out + "/strip.png")
        }
        struct Record: Encodable {
            let sequence: String, out: String, loss: String
            let reconstruction: [Double]?, future: [Double]?
        }
        try JSONOutput.print(Record(sequence: sequence, out: out, loss: config.loss.rawValue, reconstruction: r?[0],
                                    future: hasTruth ? f?[0] : nil))
    }

    private func writePNG(_ image: RGBImage, _ path: String) throws {
        try image.writePNG(to: path)
    }

    /// Nearest-neighbour upscaling by an integer factor.
    private func upscale(_ image: RGBImage, by factor: Int) -> RGBImage {
        guard factor > 1 else { return image }
        let (w, h) = (image.width * factor, image.height * factor)
        var pixels = [UInt8](repeating: 0, count: w * h * 3)
        for y in 0..<h {
            for x in 0..<w {
                let src = ((y / factor) * image.width + x / factor) * 3, dst = (y * w + x) * 3
                pixels[dst] = image.pixels[src]; pixels[dst + 1] = image.pixels[src + 1]; pixels[dst + 2] = image.pixels[src + 2]
            }
        }
        return RGBImage(width: w, height: h, pixels: pixels)
    }

    /// Rows of equally sized frames on a dark gray background with 2-pixel gaps.
    private func strip(_ rows: [[RGBImage]]) -> RGBImage {
        let side = rows.first?.first?.width ?? 1, gap = 2
        let columns = rows.map(\.count).max() ?? 1
        let (w, h) = (columns * (side + gap) + gap, rows.count * (side + gap) + gap)
        var canvas = RGBImage(width: w, height: h, pixels: [UInt8](repeating: 64, count: w * h * 3))
        for (r, row) in rows.enumerated() {
            for (c, image) in row.enumerated() {
                let (x0, y0) = (gap + c * (side + gap), gap + r * (side + gap))
                for y in 0..<image.height {
                    let dst = ((y0 + y) * w + x0) * 3, src = y * image.width * 3
                    canvas.pixels.replaceSubrange(dst..<(dst + image.width * 3), with: image.pixels[src..<(src + image.width * 3)])
                }
            }
        }
        return canvas
    }
}

/// `caption video eval --data DIR [--weights DIR]`
struct VideoEvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Score reconstruction and future prediction against the copy-last and mean-frame baselines.",
        discussion: """
            Prints {"sequences": N, "loss": "bce"|"mse", "reconstruction": {"model": x, "copy_last": y, \
            "mean_frame": z}, "future": {…}, "per_frame": {…}, "baseline_epsilon": {…}}: mean per-frame losses \
            (summed over a frame's values, averaged over frames and sequences) of the free-running model and of \
            two baselines on the same frames: every frame predicted as the last observed one, or as the mean of \
            the observed ones. For BCE each baseline's predictions are clamped to [ε, 1−ε] with the ε that \
            minimises its own loss (reported).
            """
    )

    @Option(name: .long, help: "Data folder: one sequence per subfolder (or video file).")
    var data: String

    @OptionGroup var model: VideoModelOptions

    @Option(name: .long, help: "Sequences per batch.")
    var batchSize: Int = 32

    @Option(name: .long, help: "Also write the JSON report to this file.")
    var out: String?

    func run() throws {
        let loaded = try model.load()
        let config = loaded.model.config
        let dataset: VideoDataset
        if config.input == .features {
            dataset = try VideoDataset.loadFeatures(folder: data, encoder: loaded.frameEncoder, minimumLength: config.framesNeeded,
                                                    maximumLength: config.observedFrames + config.futureFrames)
        } else {
            dataset = try VideoDataset.loadPixels(folder: data, size: config.frameSize, channels: config.channels,
                                                  minimumLength: config.framesNeeded,
                                                  maximumLength: config.observedFrames + config.futureFrames)
        }
        let report = try VideoEvaluation.evaluate(loaded.model, dataset, batchSize: max(1, batchSize))
        let line = try JSONOutput.line(report)
        if let out {
            do { try Data((line + "\n").utf8).write(to: URL(fileURLWithPath: out), options: .atomic) } catch {
                throw CaptionError(file: out, "cannot write file")
            }
        }
        print(line)
    }
}
