import CaptionSupport
import Foundation
import Imaging
import TensorCore

/// Frame sequences ready to be cut into training batches: read into memory, or generated on demand.
///
/// Pixel frames come from 8-bit images, so they are stored as bytes (exactly: every value is k/255), four
/// times smaller than floats; feature frames are stored as floats. Sequences may differ in length; every one
/// has at least `minimumLength` frames. Synthetic sequences are drawn when a batch needs them (sequence i
/// depends only on the generator's seed and i), so a training set may hold more sequences than memory would.
public struct VideoDataset {
    enum Storage {
        case bytes([[UInt8]])
        case floats([[Float]])
        /// Sequences `first ..< first + count` of the generator.
        case generated(MovingObjects, first: Int, count: Int)
    }

    /// D, the length of one frame vector.
    public let dimension: Int
    let storage: Storage
    private let storedNames: [String]

    /// Where each sequence came from (folder, video file, or `synthetic:<seed>:<index>`).
    public var names: [String] { (0..<count).map(name) }

    /// Where sequence `i` came from.
    public func name(_ i: Int) -> String {
        if case let .generated(generator, first, _) = storage { return "synthetic:\(generator.seed):\(first + i)" }
        return storedNames[i]
    }

    /// Number of sequences.
    public var count: Int {
        if case let .generated(_, _, count) = storage { return count }
        return storedNames.count
    }

    /// Frames in sequence `i`.
    public func length(_ i: Int) -> Int {
        switch storage {
        case .bytes(let s): return s[i].count / dimension
        case .floats(let s): return s[i].count / dimension
        case .generated(let generator, _, _): return generator.frames
        }
    }

    /// Pixel sequences given as frames of `dimension` bytes each (0…255 → 0…1).
    public init(dimension: Int, names: [String], byteSequences: [[UInt8]]) {
        precondition(names.count == byteSequences.count && byteSequences.allSatisfy { $0.count % dimension == 0 })
        self.dimension = dimension
        storedNames = names
        storage = .bytes(byteSequences)
    }

    /// Feature sequences given as frames of `dimension` floats each.
    public init(dimension: Int, names: [String], floatSequences: [[Float]]) {
        precondition(names.count == floatSequences.count && floatSequences.allSatisfy { $0.count % dimension == 0 })
        self.dimension = dimension
        storedNames = names
        storage = .floats(floatSequences)
    }

    /// Sequences `indices` of the moving-objects generator (gray, `generator.size`², as `caption video synth`
    /// writes them, without the round trip through PNG), each drawn when a batch asks for it.
    public static func synthetic(_ generator: MovingObjects, indices: Range<Int>) -> VideoDataset {
        VideoDataset(dimension: generator.size * generator.size, storedNames: [],
                     storage: .generated(generator, first: indices.lowerBound, count: indices.count))
    }

    private init(dimension: Int, storedNames: [String], storage: Storage) {
        self.dimension = dimension
        self.storedNames = storedNames
        self.storage = storage
    }

    /// Reads every sequence of a data folder (subfolders of frames, or video files when `ffmpeg` is installed)
    /// as pixel frames. Each must have at least `minimumLength` frames; only the first `maximumLength` are kept
    /// when given. Decoding runs on `Threads.count` workers. Throws the first failure (naming its file).
    public static func loadPixels(folder: String, size: Int, channels: Int, minimumLength: Int,
                                  maximumLength: Int? = nil) throws -> VideoDataset {
        let paths = try SequenceReader.sequences(in: folder)
        let encoder = FrameEncoder.pixels(size: size, channels: channels)
        var sequences = [[UInt8]](repeating: [], count: paths.count)
        var failures = [Error?](repeating: nil, count: paths.count)
        sequences.withUnsafeMutableBufferPointer { out in
            failures.withUnsafeMutableBufferPointer { errors in
                parallelFor(paths.count) { i in
                    do {
                        let images = try SequenceReader.images(at: paths[i], maxFrames: maximumLength)
                        if images.count < minimumLength {
                            throw CaptionError(file: paths[i], "has \(images.count) frames, the model needs at least \(minimumLength)")
                        }
                        var bytes = [UInt8](repeating: 0, count: images.count * encoder.dimension)
                        var frame = [Float](repeating: 0, count: encoder.dimension)
                        for (f, image) in images.enumerated() {
                            frame.withUnsafeMutableBufferPointer { encoder.encode(image, into: $0.baseAddress!) }
                            for j in 0..<encoder.dimension { bytes[f * encoder.dimension + j] = UInt8(frame[j] * 255 + 0.5) }
                        }
                        out[i] = bytes
                    } catch {
                        errors[i] = error
                    }
                }
            }
        }
        if let error = failures.compactMap({ $0 }).first { throw error }
        return VideoDataset(dimension: encoder.dimension, names: paths, byteSequences: sequences)
    }

    /// Reads every sequence of a data folder through a custom frame encoder (e.g. CNN features), serially
    /// (the encoder may use every thread itself).
    public static func loadFeatures(folder: String, encoder: FrameEncoder, minimumLength: Int,
                                    maximumLength: Int? = nil) throws -> VideoDataset {
        let paths = try SequenceReader.sequences(in: folder)
        var sequences: [[Float]] = []
        for path in paths {
            let images = try SequenceReader.images(at: path, maxFrames: maximumLength)
            if images.count < minimumLength {
                throw CaptionError(file: path, "has \(images.count) frames, the model needs at least \(minimumLength)")
            }
            var floats = [Float](repeating: 0, count: images.count * encoder.dimension)
            floats.withUnsafeMutableBufferPointer { out in
                for (f, image) in images.enumerated() { encoder.encode(image, into: out.baseAddress! + f * encoder.dimension) }
            }
            sequences.append(floats)
        }
        return VideoDataset(dimension: encoder.dimension, names: paths, floatSequences: sequences)
    }

    /// k/255 for every byte k (the same values `FrameEncoder.pixels` produces).
    static let byteValues: [Float] = (0..<256).map { Float($0) / 255 }

    /// Frames `start ..< start + frames` of each listed sequence as one time-major batch (F × B × D).
    public func batch(_ items: [(sequence: Int, start: Int)], frames: Int) -> FrameBatch {
        var out = Tensor(shape: [0])
        batch(items, frames: frames, into: &out)
        return FrameBatch(frames: out)
    }

    /// The same, written into `out` (F × B × D), whose storage is reused when it has the right size.
    public func batch(_ items: [(sequence: Int, start: Int)], frames: Int, into out: inout Tensor) {
        let b = items.count, d = dimension
        if out.count == frames * b * d { out.reshape([frames, b, d]) } else {
            out = Tensor(shape: [frames, b, d], unsafeUninitialized: { _ in })
        }
        // Generated sequences are drawn first, in parallel (one per item).
        var drawn: [[UInt8]] = []
        if case let .generated(generator, first, _) = storage {
            drawn = [[UInt8]](repeating: [], count: b)
            drawn.withUnsafeMutableBufferPointer { out in
                parallelFor(b) { i in out[i] = Array(generator.sequence(first + items[i].sequence).frames.joined()) }
            }
        }
        out.withUnsafeMutableBufferPointer { ob in
            for (column, item) in items.enumerated() {
                precondition(item.start >= 0 && item.start + frames <= length(item.sequence),
                             "frames \(item.start)..<\(item.start + frames) of a \(length(item.sequence))-frame sequence")
                for f in 0..<frames {
                    let dst = ob.baseAddress! + (f * b + column) * d
                    let offset = (item.start + f) * d
                    let bytes: [UInt8]
                    switch storage {
                    case .bytes(let s): bytes = s[item.sequence]
                    case .generated: bytes = drawn[column]
                    case .floats(let s):
                        s[item.sequence].withUnsafeBufferPointer { dst.update(from: $0.baseAddress! + offset, count: d) }
                        continue
                    }
                    bytes.withUnsafeBufferPointer { src in
                        VideoDataset.byteValues.withUnsafeBufferPointer { value in
                            for j in 0..<d { dst[j] = value[Int(src[offset + j])] }
                        }
                    }
                }
            }
        }
    }

    /// The mean frame (D values) over every frame of up to `limit` sequences spread over the data.
    public func meanFrame(limit: Int = 1000) -> [Float] {
        let picked = min(limit, count)
        var sum = [Double](repeating: 0, count: dimension)
        var frames = 0
        for k in 0..<picked {
            let i = k * count / picked
            let batch = self.batch([(sequence: i, start: 0)], frames: length(i))
            batch.frames.withUnsafeBufferPointer { fb in
                for f in 0..<length(i) { for j in 0..<dimension { sum[j] += Double(fb[f * dimension + j]) } }
            }
            frames += length(i)
        }
        return sum.map { Float($0 / Double(max(frames, 1))) }
    }

    /// The first `frames` frames of sequences `range`, as one batch.
    public func batch(_ range: Range<Int>, frames: Int) -> FrameBatch {
        batch(range.map { (sequence: $0, start: 0) }, frames: frames)
    }
}
