import Foundation
import Imaging
import TensorCore
import Vision
import CaptionSupport
import CaptionData
import CaptionMetrics
import SyntheticWorld
import Captioning
#if canImport(Glibc)
import Glibc
private func closeFile(_ fd: Int32) { _ = Glibc.close(fd) }
#else
import Darwin
private func closeFile(_ fd: Int32) { _ = Darwin.close(fd) }
#endif

/// The per-image tensors of one split during a training run, each computed at most once per run when the budgets
/// allow:
///
/// - `.features` (frozen encoder): the annotation vectors a_1..a_L (L×D). `precompute` decodes and encodes every
///   image before training (decoding on a background thread while the encoder runs), keeping the results in memory
///   up to `memoryBudget` bytes, then in one file on disk (`diskPath`) up to `diskBudget` bytes. Images beyond both
///   budgets are decoded and encoded again whenever a batch needs them. The disk file is deleted by `close()`.
/// - `.inputs` (fine-tuned encoder): the preprocessed network inputs (3×S×S), kept in memory up to `memoryBudget`;
///   the rest are decoded again each epoch.
///
/// Features are computed one image at a time, so a cached vector is bit-identical to a recomputed one and a run is
/// the same whatever the budgets. Safe to use from the prefetch thread and the training thread at once.
final class ImageStore {
    enum Kind { case inputs, features }

    let kind: Kind
    let paths: [String]
    /// Floats per image: 3·S·S or L·D.
    let elementCount: Int
    private let preprocessing: Preprocessing
    private let encoder: Encoder?
    private let decoder = ImageDecoder()
    private let memoryBudget: Int
    private let diskBudget: Int
    private let diskPath: String?

    private let lock = NSLock()
    private var memory: [[Float]?]
    private var memoryBytes = 0
    private var diskSlot: [Int]
    private var diskBytes = 0
    private var diskFD: Int32 = -1

    /// `encoder` is required for `.features` (and must stay frozen for the store's lifetime).
    init(kind: Kind, paths: [String], preprocessing: Preprocessing, encoder: Encoder, memoryBudget: Int,
         diskBudget: Int = 0, diskPath: String? = nil) {
        self.kind = kind
        self.paths = paths
        self.preprocessing = preprocessing
        self.encoder = kind == .features ? encoder : nil
        let (h, w) = (preprocessing.outputHeight, preprocessing.outputWidth)
        if kind == .features {
            let g = encoder.gridSize(height: h, width: w)
            elementCount = g.height * g.width * encoder.featureDimension
        } else {
            elementCount = 3 * h * w
        }
        self.memoryBudget = memoryBudget
        self.diskBudget = kind == .features && diskPath != nil ? diskBudget : 0
        self.diskPath = diskPath
        memory = Array(repeating: nil, count: paths.count)
        diskSlot = Array(repeating: -1, count: paths.count)
    }

    deinit { close() }

    /// Removes the disk cache.
    func close() {
        lock.lock(); defer { lock.unlock() }
        if diskFD >= 0 {
            closeFile(diskFD)
            diskFD = -1
            if let diskPath { unlink(diskPath) }
        }
    }

    /// Bytes held in memory and on disk, and images held.
    var usage: (memoryBytes: Int, diskBytes: Int, cached: Int) {
        lock.lock(); defer { lock.unlock() }
        return (memoryBytes, diskBytes, memory.indices.filter { memory[$0] != nil || diskSlot[$0] >= 0 }.count)
    }

    /// Reads every image's header (format, size) so that unreadable files stop the run before it starts.
    @discardableResult
    func checkHeaders(describe: (Int) -> String) throws -> [ImageInfo] {
        try paths.indices.map { i in
            do { return try decoder.info(path: paths[i]) } catch {
                throw CaptionError(file: "", "\(error) (\(describe(i)))")
            }
        }
    }

    /// Decoded and preprocessed input of image `i` (3×S×S floats).
    func input(_ i: Int) throws -> [Float] {
        let image: RGBImage
        do { image = try decoder.decode(path: paths[i]) } catch { throw CaptionError.wrapping(error, file: paths[i]) }
        var out = [Float](repeating: 0, count: 3 * preprocessing.outputHeight * preprocessing.outputWidth)
        out.withUnsafeMutableBufferPointer { preprocessing.write(image, into: $0.baseAddress!) }
        return out
    }

    /// Encodes one preprocessed input (frozen encoder, inference path).
    private func encode(_ input: [Float]) -> [Float] {
        let (h, w) = (preprocessing.outputHeight, preprocessing.outputWidth)
        return encoder!.forward(images: Tensor(shape: [1, 3, h, w], storage: input)).storage
    }

    /// Image `i`'s tensor, from the cache or computed now (and cached if there is room).
    func tensor(_ i: Int) throws -> [Float] {
        if let cached = try cachedTensor(i) { return cached }
        let input = try self.input(i)
        let value = kind == .features ? encode(input) : input
        store(i, value)
        return value
    }

    /// The tensors of `indices`, stacked: N×3×S×S or N×L×D.
    func batch(_ indices: [Int]) throws -> Tensor {
        var storage = [Float]()
        storage.reserveCapacity(indices.count * elementCount)
        for i in indices { storage += try tensor(i) }
        let shape: [Int]
        if kind == .inputs {
            shape = [indices.count, 3, preprocessing.outputHeight, preprocessing.outputWidth]
        } else {
            shape = [indices.count, elementCount / encoder!.featureDimension, encoder!.featureDimension]
        }
        return Tensor(shape: shape, storage: storage)
    }

    /// Computes and caches every image up front (`.features`): images are decoded on a background thread one
    /// chunk ahead of the encoder. `progress(done)` is called after each chunk.
    func precompute(chunk: Int = 16, progress: (Int) -> Void) throws {
        let order = paths.indices.filter { (try? cachedTensor($0)) == nil }
        let chunks = stride(from: 0, to: order.count, by: chunk).map { Array(order[$0..<min($0 + chunk, order.count)]) }
        let pipeline = Pipeline(count: chunks.count) { k in try chunks[k].map { try self.input($0) } }
        defer { pipeline.cancel() }
        var done = paths.count - order.count
        for k in chunks.indices {
            let inputs = try pipeline.next()
            for (i, input) in zip(chunks[k], inputs) {
                store(i, kind == .features ? encode(input) : input)
            }
            done += chunks[k].count
            progress(done)
        }
    }

    // MARK: Cache

    private func cachedTensor(_ i: Int) throws -> [Float]? {
        lock.lock()
        if let m = memory[i] { lock.unlock(); return m }
        let slot = diskSlot[i], fd = diskFD
        lock.unlock()
        guard slot >= 0 else { return nil }
        var out = [Float](repeating: 0, count: elementCount)
        let bytes = elementCount * MemoryLayout<Float>.stride
        let got = out.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, bytes, off_t(slot * bytes)) }
        guard got == bytes else { throw CaptionError(file: diskPath ?? "feature cache", "short read from the feature cache") }
        return out
    }

    private func store(_ i: Int, _ value: [Float]) {
        let bytes = value.count * MemoryLayout<Float>.stride
        lock.lock(); defer { lock.unlock() }
        guard memory[i] == nil && diskSlot[i] < 0 else { return }
        if memoryBytes + bytes <= memoryBudget {
            memory[i] = value
            memoryBytes += bytes
            return
        }
        guard diskBytes + bytes <= diskBudget, let diskPath else { return }
        if diskFD < 0 {
            diskFD = open(diskPath, O_RDWR | O_CREAT | O_TRUNC, 0o600)
            if diskFD < 0 { disableDisk(); return }
        }
        let slot = diskBytes / bytes
        let written = value.withUnsafeBytes { pwrite(diskFD, $0.baseAddress!, bytes, off_t(slot * bytes)) }
        guard written == bytes else { disableDisk(); return }
        diskSlot[i] = slot
        diskBytes += bytes
    }

    /// A disk that refuses writes (full, read-only) ends disk caching; images are recomputed instead.
    private func disableDisk() { diskBytes = Int.max / 2 }
}
