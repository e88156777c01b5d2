import TensorCore
#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// One named parameter tensor: a range of a model's flat parameter (and gradient) buffer.
///
/// Names follow the PyTorch module tree (`encoder.layer1.0.conv1.weight`,
/// `decoder.decode_step.weight_ih`) so checkpoints map one to one.
public struct Param: Hashable, Sendable {
    /// The PyTorch `state_dict` key, e.g. `decoder.embedding.weight`.
    public let name: String
    /// Dimensions in PyTorch order (empty for a scalar).
    public let shape: [Int]
    /// Start of this tensor in the flat buffer.
    public let offset: Int
    /// `false` for buffers such as BatchNorm's running statistics: saved and loaded with the model
    /// (they are in `state_dict` in PyTorch) but never touched by optimisers, weight decay or clipping.
    public let trainable: Bool
    /// Number of floats in this tensor (1 for a scalar).
    public var count: Int { shape.reduce(1, *) }
}

/// Collects the parameters of a model while its layers are built, assigning each a range of
/// one flat buffer. Build the layers with a layout, then allocate `Parameters(layout)` once.
public struct ParameterLayout {
    /// Every parameter and buffer, in the order they were reserved (their offsets increase).
    public private(set) var params: [Param] = []
    /// Floats reserved so far: the size of the flat buffer.
    public private(set) var totalCount = 0
    private var index: [String: Int] = [:]

    /// An empty layout.
    public init() {}

    /// Reserves `shape` under `name` (which must be unique) and returns its handle.
    public mutating func add(_ name: String, _ shape: [Int]) -> Param {
        append(Param(name: name, shape: shape, offset: totalCount, trainable: true))
    }

    /// Reserves a non-trainable buffer (PyTorch's `register_buffer`, e.g. BatchNorm's `running_mean`):
    /// it lives in the flat value buffer so checkpoints carry it, but `trainable` is `false`, so
    /// optimisers must skip it (its gradient stays zero). Layers update such buffers themselves.
    public mutating func addBuffer(_ name: String, _ shape: [Int]) -> Param {
        append(Param(name: name, shape: shape, offset: totalCount, trainable: false))
    }

    private mutating func append(_ p: Param) -> Param {
        precondition(index[p.name] == nil, "duplicate parameter name \(p.name)")
        index[p.name] = params.count
        params.append(p)
        totalCount += p.count
        return p
    }

    /// The handle reserved under `name`, or nil.
    public func param(named name: String) -> Param? { index[name].map { params[$0] } }
}

/// A model's parameters and their gradients, each one contiguous buffer (as in llm.c): Adam,
/// clipping, zeroing and checkpointing are each a single loop over `values` / `grads`.
///
/// The buffers are allocated once and never move, so layers read them through raw pointers
/// (`values + param.offset`) without copy-on-write or exclusivity checks in hot loops.
public final class Parameters {
    /// The names, shapes and offsets of the tensors in the buffers.
    public let layout: ParameterLayout
    /// All parameter values, `layout.totalCount` floats.
    public let values: UnsafeMutablePointer<Float>
    /// All gradients, same layout as `values`. Backward passes accumulate (`+=`) into it.
    public let grads: UnsafeMutablePointer<Float>
    /// Floats in each of `values` and `grads`.
    public var count: Int { layout.totalCount }

    /// Allocates zeroed value and gradient buffers for `layout`.
    public init(_ layout: ParameterLayout) {
        self.layout = layout
        // calloc rather than allocate + fill: the kernel hands out zero pages lazily, so an
        // inference-only process never touches (or holds) the gradient buffer's memory.
        let n = max(1, layout.totalCount)
        values = calloc(n, MemoryLayout<Float>.stride)!.bindMemory(to: Float.self, capacity: n)
        grads = calloc(n, MemoryLayout<Float>.stride)!.bindMemory(to: Float.self, capacity: n)
    }

    deinit {
        free(values)
        free(grads)
    }

    /// Pointer to the first value of `p` (`p.count` floats).
    @inlinable public func value(_ p: Param) -> UnsafeMutablePointer<Float> { values + p.offset }
    /// Pointer to the first gradient of `p` (`p.count` floats).
    @inlinable public func grad(_ p: Param) -> UnsafeMutablePointer<Float> { grads + p.offset }

    /// Hands the memory of one parameter's values (and gradients) back to the kernel: every whole page inside
    /// its range is dropped (`madvise(MADV_DONTNEED)`, the buffers are anonymous mappings), and reads as zero
    /// afterwards. For inference-only models that keep a derived copy of a weight (folded convolutions) and
    /// never read the original again.
    public func discard(_ p: Param) {
        let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
        for base in [values, grads] {
            let start = UInt(bitPattern: base + p.offset), end = UInt(bitPattern: base + p.offset + p.count)
            let first = (start + UInt(pageSize) - 1) / UInt(pageSize) * UInt(pageSize)
            let last = end / UInt(pageSize) * UInt(pageSize)
            guard last > first else { continue }
            _ = madvise(UnsafeMutableRawPointer(bitPattern: first), Int(last - first), MADV_DONTNEED)
        }
    }

    /// Sets every gradient to zero (in parallel blocks: for a large model this is a pass over tens of MB).
    public func zeroGrads() {
        let grads = grads, count = count, workers = min(Threads.count, max(1, count >> 18))
        parallelFor(workers) { w in
            let lo = count * w / workers, hi = count * (w + 1) / workers
            (grads + lo).update(repeating: 0, count: hi - lo)
        }
    }

    /// A copy of one parameter as a tensor.
    public func tensor(_ p: Param) -> Tensor {
        Tensor(shape: p.shape, storage: Array(UnsafeBufferPointer(start: values + p.offset, count: p.count)))
    }

    /// A copy of one parameter's gradient as a tensor.
    public func gradTensor(_ p: Param) -> Tensor {
        Tensor(shape: p.shape, storage: Array(UnsafeBufferPointer(start: grads + p.offset, count: p.count)))
    }

    /// Overwrites one parameter; the shapes must match exactly.
    public func set(_ p: Param, _ t: Tensor) {
        precondition(t.shape == p.shape, "\(p.name): shape \(t.shape) != \(p.shape)")
        t.withUnsafeBufferPointer { (values + p.offset).update(from: $0.baseAddress!, count: p.count) }
    }
}
