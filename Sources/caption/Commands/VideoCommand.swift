import CaptionSupport
import ArgumentParser
import Foundation
import Imaging
import TensorCore
import Video
import Vision

/// `caption video`: the LSTM video autoencoder (Srivastava et al. 2015).
struct VideoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "video",
        abstract: "Learn and use an LSTM autoencoder of frame sequences (reconstruction + future prediction).",
        discussion: """
            A sequence is a folder of PNG/JPEG frames (in natural name order) or a video file, decoded with \
            ffmpeg when it is installed. A data folder holds one sequence per subfolder (or video file). \
            --weights defaults to the shipped model, weights/video/.
            """,
        subcommands: [VideoSynthCommand.self, VideoTrainCommand.self, VideoEncodeCommand.self,
                      VideoReconstructCommand.self, VideoEvalCommand.self]
    )
}

/// `caption video synth --out DIR --count N [--seed S]`
struct VideoSynthCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "synth",
        abstract: "Write Moving-MNIST-like sequences: one folder of PNG frames per sequence.",
        discussion: """
            Two objects (procedurally drawn digits, or shapes) in 28×28 patches move on a 64×64 canvas and \
            bounce off the walls; frames combine them by a per-pixel max. 20 frames per sequence (10 observed, \
            10 future). Sequence i depends only on the seed and i. Writes DIR/seq_NNNNN/frame_NN.png and \
            DIR/synth.json (the generator's settings).
            """
    )

    @Option(name: .long, help: "Output folder (created; must not exist or be empty).")
    var out: String

    @Option(name: .long, help: "Number of sequences.")
    var count: Int

    @Option(name: .long, help: "Random seed.")
    var seed: UInt64 = 1

    @Option(name: .long, help: "Objects: digits, shapes or mixed.")
    var kind: MovingObjects.Kind = .digits

    @Option(name: .long, help: "Objects per sequence (0...8).")
    var objects: Int = 2

    @Option(name: .long, help: "Frames per sequence (1...1000).")
    var frames: Int = 20

    @Option(name: .long, help: "Canvas side in pixels (28...512).")
    var size: Int = 64

    @OptionGroup var log: LogOptions

    func validate() throws {
        guard count >= 1 else { throw ValidationError("--count must be at least 1") }
        guard (0...8).contains(objects) else { throw ValidationError("--objects must be in 0...8") }
        guard (1...1000).contains(frames) else { throw ValidationError("--frames must be in 1...1000") }
        guard (28...512).contains(size) else { throw ValidationError("--size must be in 28...512") }
    }

    func run() throws {
        log.apply()
        let generator = MovingObjects(size: size, frames: frames, objects: objects, kind: kind, seed: seed)
        try prepareEmptyFolder(out)
        let started = Date()
        let display = ProgressDisplay()
        defer { display.finish() }
        let digits = max(5, String(count - 1).count)
        var failure: String?
        let lock = NSLock()
        let chunk = 64
        for first in stride(from: 0, to: count, by: chunk) {
            let last = min(first + chunk, count)
            parallelFor(last - first) { j in
                let i = first + j
                let folder = out + "/seq_" + String(repeating: "0", count: max(0, digits - String(i).count)) + String(i)
                do {
                    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
                    for (f, frame) in generator.sequence(i).frames.enumerated() {
                        var rgb = [UInt8](repeating: 0, count: frame.count * 3)
                        for p in 0..<frame.count { rgb[3 * p] = frame[p]; rgb[3 * p + 1] = frame[p]; rgb[3 * p + 2] = frame[p] }
                        try RGBImage(width: size, height: size, pixels: rgb)
                            .writePNG(to: folder + String(format: "/frame_%02d.png", f), compressionLevel: 6)
                    }
                } catch {
                    lock.lock(); if failure == nil { failure = "\(error)" }; lock.unlock()
                }
            }
            if let failure { throw failure.contains(": ") ? CaptionError(file: "", failure) : CaptionError(file: out, failure) }
            display.update("video synth: \(last)/\(count) sequences", done: last, total: count, force: last == count)
        }
        display.finish()
        try JSONOutput.write(SynthSettings(count: count, seed: seed, kind: kind, objects: objects, frames: frames, size: size,
                                           patchSize: generator.patchSize), to: out + "/synth.json")
        Log.info(String(format: "video synth: wrote %d sequences of %d frames to %@ in %.1f s", count, frames, out,
                        Date().timeIntervalSince(started)))
        struct Summary: Encodable { let out: String, sequences: Int, frames: Int, size: Int }
        try JSONOutput.print(Summary(out: out, sequences: count, frames: frames, size: size))
    }
}

/// synth.json: the generator's settings.
private struct SynthSettings: Encodable {
    let generator = "moving-objects"
    let count: Int, seed: UInt64, kind: MovingObjects.Kind, objects: Int, frames: Int, size: Int, patchSize: Int
    /// The first half of each sequence is the observed part, the rest the future.
    let observedFrames: Int, futureFrames: Int

    init(count: Int, seed: UInt64, kind: MovingObjects.Kind, objects: Int, frames: Int, size: Int, patchSize: Int) {
        (self.count, self.seed, self.kind, self.objects, self.frames, self.size) = (count, seed, kind, objects, frames, size)
        self.patchSize = patchSize
        observedFrames = frames / 2
        futureFrames = frames - frames / 2
    }

    enum CodingKeys: String, CodingKey {
        case generator, count, seed, kind, objects, frames, size, patchSize = "patch_size"
        case observedFrames = "observed_frames", futureFrames = "future_frames"
    }
}

/// Creates `folder`, which must not exist or be empty.
func prepareEmptyFolder(_ folder: String) throws {
    let fm = FileManager.default
    var isDirectory: ObjCBool = false
    if fm.fileExists(atPath: folder, isDirectory: &isDirectory) {
        guard isDirectory.boolValue else { throw CaptionError(file: folder, "exists and is not a folder") }
        let entries = (try? fm.contentsOfDirectory(atPath: folder)) ?? []
        guard entries.isEmpty else { throw CaptionError(file: folder, "folder is not empty") }
    } else {
        do { try fm.createDirectory(atPath: folder, withIntermediateDirectories: true) } catch {
            throw CaptionError(file: folder, "cannot create folder")
        }
    }
}

// MARK: Shared by the video commands

/// `--weights` and `--encoder-weights` of the commands that load a video model.
struct VideoModelOptions: ParsableArguments {
    @Option(name: .long, help: "Model folder (default: the shipped weights/video).")
    var weights: String?

    @Option(name: .long, help: "Captioning model folder for a feature model's CNN encoder.")
    var encoderWeights: String?

    /// The model, and what turns its frames into input vectors.
    func load() throws -> LoadedVideoModel { try LoadedVideoModel(weights: weights, encoderWeights: encoderWeights) }
}

/// A loaded video model and what turns frames into its input vectors.
struct LoadedVideoModel {
    let path: String
    let model: VideoAutoencoder
    let anomaly: AnomalyStatistics?
    let frameEncoder: FrameEncoder

    /// Loads `--weights` (default: the shipped `weights/video`); a feature model also loads its CNN encoder
    /// (`--encoder-weights`, else the one recorded in config.json).
    init(weights: String?, encoderWeights: String?) throws {
        path = try WeightsLocation.resolve(weights, subdirectory: "video")
        (model, anomaly) = try VideoModelFolder.load(path)
        let config = model.config
        switch config.input {
        case .pixels:
            frameEncoder = .pixels(size: config.frameSize, channels: config.channels)
        case .features:
            guard let encoderPath = encoderWeights ?? config.featureEncoder else {
                throw CaptionError(file: path, "a feature model needs --encoder-weights DIR (the captioning model whose encoder made its features)")
            }
            frameEncoder = try featureFrameEncoder(encoderPath)
            guard frameEncoder.dimension == config.featureDimension else {
                throw CaptionError(file: encoderPath, "its encoder gives \(frameEncoder.dimension)-d features, the video model reads \(config.featureDimension)")
            }
        }
    }

    /// The first `frames` frames of the sequence at `path` (all when nil) as F × 1 × D, and how many it had.
    func sequence(_ path: String, frames: Int?, atLeast minimum: Int) throws -> FrameBatch {
        let images = try SequenceReader.images(at: path, maxFrames: frames)
        guard images.count >= minimum else {
            throw CaptionError(file: path, "has \(images.count) frames, the model reads \(minimum)")
        }
        let d = frameEncoder.dimension
        var t = Tensor(shape: [images.count, 1, d])
        t.withUnsafeMutableBufferPointer { buffer in
            for (i, image) in images.enumerated() { frameEncoder.encode(image, into: buffer.baseAddress! + i * d) }
        }
        return FrameBatch(frames: t)
    }
}

/// A frame encoder giving the captioning CNN's pooled feature vector (the mean of the annotation vectors).
func featureFrameEncoder(_ path: String) throws -> FrameEncoder {
    let extractor = try FeatureExtractor(weights: path)
    let d = extractor.encoder.featureDimension
    return FrameEncoder(dimension: d) { image, out in
        let features = extractor.extract(image: image).features    // L × D
        let l = features.shape[0]
        out.update(repeating: 0, count: d)
        features.withUnsafeBufferPointer { f in
            for row in 0..<l { for j in 0..<d { out[j] += f[row * d + j] } }
        }
        for j in 0..<d { out[j] /= Float(max(l, 1)) }
    }
}
