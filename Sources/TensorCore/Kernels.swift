#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// Elementwise and reduction kernels over raw Float32 buffers.
///
/// Every layer in NN builds on these; they take pointers and counts so callers can apply them to
/// slices of larger buffers (a parameter's range in the flat parameter buffer, one image of a batch).
public enum Kernels {
    // MARK: Elementwise, in place or out of place

    /// x = value, for `n` elements.
    @inlinable public static func fill(_ x: UnsafeMutablePointer<Float>, _ n: Int, _ value: Float) {
        x.update(repeating: value, count: n)
    }

    /// y += alpha · x
    @inlinable public static func axpy(_ n: Int, _ alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>) {
        for i in 0..<n { y[i] += alpha * x[i] }
    }

    /// out = a + b
    @inlinable public static func add(_ n: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>) {
        for i in 0..<n { out[i] = a[i] + b[i] }
    }

    /// out = a ⊙ b
    @inlinable public static func mul(_ n: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>) {
        for i in 0..<n { out[i] = a[i] * b[i] }
    }

    /// x *= s
    @inlinable public static func scale(_ n: Int, _ s: Float, _ x: UnsafeMutablePointer<Float>) {
        for i in 0..<n { x[i] *= s }
    }

    /// out = max(x, 0)
    @inlinable public static func relu(_ n: Int, _ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>) {
        for i in 0..<n { out[i] = max(x[i], 0) }
    }

    /// dx = dy where y > 0 (y is ReLU's output), else 0 (NaN in y gives 0, as PyTorch's `threshold_backward`).
    /// `dx` may be `dy` (in place). Eight lanes at a time: a scalar select compiles to a branch per element,
    /// which mispredicts on random signs.
    @inlinable public static func reluBackward(_ n: Int, _ y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                                               _ dx: UnsafeMutablePointer<Float>) {
        let stride = MemoryLayout<SIMD8<Float>>.stride
        let yp = UnsafeRawPointer(y), dp = UnsafeRawPointer(dy), op = UnsafeMutableRawPointer(dx)
        let vectors = n / 8
        for i in 0..<vectors {
            let yv = yp.loadUnaligned(fromByteOffset: i &* stride, as: SIMD8<Float>.self)
            let dv = dp.loadUnaligned(fromByteOffset: i &* stride, as: SIMD8<Float>.self)
            op.storeBytes(of: dv.replacing(with: 0, where: .!(yv .> 0)), toByteOffset: i &* stride, as: SIMD8<Float>.self)
        }
        for i in (vectors &* 8)..<n { dx[i] = y[i] > 0 ? dy[i] : 0 }
    }

    /// σ(x) = 1 / (1 + e⁻ˣ) of one value.
    @inlinable public static func sigmoid(_ x: Float) -> Float { 1 / (1 + expf(-x)) }

    /// out = σ(x)
    @inlinable public static func sigmoid(_ n: Int, _ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>) {
        for i in 0..<n { out[i] = 1 / (1 + expf(-x[i])) }
    }

    /// out = tanh(x)
    @inlinable public static func tanh(_ n: Int, _ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>) {
        for i in 0..<n { out[i] = tanhf(x[i]) }
    }

    // MARK: Reductions

    /// Σ x, accumulated in Double (so long reductions stay close to PyTorch's) in eight interleaved partial
    /// sums (one chain would be bound by the adds' latency), added up at the end.
    @inlinable public static func sum(_ n: Int, _ x: UnsafePointer<Float>) -> Float {
        var lanes = SIMD8<Double>(repeating: 0)
        var i = 0
        while i + 8 <= n {
            lanes += SIMD8<Double>(UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self))
            i += 8
        }
        var s = lanes.sum()
        while i < n { s += Double(x[i]); i += 1 }
        return Float(s)
    }

    /// Σ a·b, in Double, in eight partial sums like `sum`.
    @inlinable public static func dot(_ n: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>) -> Float {
        var lanes = SIMD8<Double>(repeating: 0)
        var i = 0
        while i + 8 <= n {
            let u = SIMD8<Double>(UnsafeRawPointer(a + i).loadUnaligned(as: SIMD8<Float>.self))
            let v = SIMD8<Double>(UnsafeRawPointer(b + i).loadUnaligned(as: SIMD8<Float>.self))
            lanes += u * v
            i += 8
        }
        var s = lanes.sum()
        while i < n { s += Double(a[i]) * Double(b[i]); i += 1 }
        return Float(s)
    }

    /// Sum of squares, in Double (for gradient norms): eight interleaved partial sums (the loop is bound by
    /// the adds' latency otherwise), added up at the end.
    @inlinable public static func sumOfSquares(_ n: Int, _ x: UnsafePointer<Float>) -> Double {
        var lanes = SIMD8<Double>(repeating: 0)
        var i = 0
        while i + 8 <= n {
            let v = SIMD8<Double>(UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self))
            lanes += v * v
            i += 8
        }
        var s = lanes.sum()
        while i < n { s += Double(x[i]) * Double(x[i]); i += 1 }
        return s
    }

    /// Index of the largest element (first one on ties).
    @inlinable public static func argmax(_ n: Int, _ x: UnsafePointer<Float>) -> Int {
        precondition(n > 0)
        var best = 0
        var v = x[0]
        for i in 1..<n where x[i] > v { v = x[i]; best = i }
        return best
    }

    /// In-place softmax over `n` values.
    @inlinable public static func softmax(_ n: Int, _ x: UnsafeMutablePointer<Float>) {
        var m = -Float.infinity
        for i in 0..<n { m = max(m, x[i]) }
        var s: Float = 0
        for i in 0..<n { let e = expf(x[i] - m); x[i] = e; s += e }
        let inv = 1 / s
        for i in 0..<n { x[i] *= inv }
    }

    /// In-place log-softmax over `n` values.
    @inlinable public static func logSoftmax(_ n: Int, _ x: UnsafeMutablePointer<Float>) {
        let lse = logSumExp(n, x)
        for i in 0..<n { x[i] -= lse }
    }

    /// log Σ exp(x) over `n` values, shifted by their maximum so nothing overflows; −∞ when all are −∞ (or n is 0).
    @inlinable public static func logSumExp(_ n: Int, _ x: UnsafePointer<Float>) -> Float {
        var m = -Float.infinity
        for i in 0..<n { m = max(m, x[i]) }
        if m == -.infinity { return m }
        var s: Float = 0
        for i in 0..<n { s += expf(x[i] - m) }
        return m + logf(s)
    }

    /// Adds `bias[c]` to every element of channel `c` of a C×(spatial) block.
    @inlinable public static func addChannelBias(channels: Int, spatial: Int, _ bias: UnsafePointer<Float>, _ x: UnsafeMutablePointer<Float>) {
        for c in 0..<channels {
            let b = bias[c]
            let row = x + c * spatial
            for i in 0..<spatial { row[i] += b }
        }
    }

    /// Largest |a[i] - b[i]|.
    public static func maxAbsDifference(_ a: [Float], _ b: [Float]) -> Float {
        precondition(a.count == b.count)
        var m: Float = 0
        for i in 0..<a.count {
            let d = abs(a[i] - b[i])
            if d.isNaN { return .nan }
            m = max(m, d)
        }
        return m
    }
}
