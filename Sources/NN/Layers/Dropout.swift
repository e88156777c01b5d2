import TensorCore

/// Inverted dropout (PyTorch `nn.Dropout`): in training each element is zeroed with probability `probability`
/// and the survivors are scaled by 1/(1 − probability), so evaluation is the identity.
///
/// Randomness comes only from the caller's `RNG`, and the mask drawn in `forward` is returned as a cache for
/// `backward`, so a training run is reproducible from its seed.
public struct Dropout {
    /// Probability of zeroing each element in training, in [0, 1).
    public var probability: Float

    /// A dropout layer; traps unless 0 ≤ `probability` < 1.
    public init(probability: Float) {
        precondition(probability >= 0 && probability < 1, "Dropout probability \(probability) outside [0, 1)")
        self.probability = probability
    }

    /// The per-element multipliers used by one forward pass: 0 or 1/(1 − p); nil when dropout was the identity
    /// (evaluation, or p = 0).
    public struct Mask {
        /// Same shape as the input: 0 or 1/(1 − p) per element; nil for the identity.
        public let scales: Tensor?
    }

    /// Whether a pass in this mode actually drops anything.
    @inlinable public func isActive(training: Bool) -> Bool { training && probability > 0 }

    /// `x` (any shape) → (y of the same shape, the mask for backward); returns `x` unchanged when not active.
    public func forward(_ x: Tensor, training: Bool, rng: inout RNG) -> (Tensor, Mask) {
        guard isActive(training: training) else { return (x, Mask(scales: nil)) }
        var scales = Tensor(shape: x.shape)
        var y = x
        scales.withUnsafeMutableBufferPointer { s in
            drawMask(count: s.count, into: s.baseAddress!, rng: &rng)
            y.withUnsafeMutableBufferPointer { Kernels.mul(s.count, $0.baseAddress!, s.baseAddress!, $0.baseAddress!) }
        }
        return (y, Mask(scales: scales))
    }

    /// `dy` → dx = dy·mask (elementwise), or `dy` itself when the mask is the identity.
    public func backward(_ dy: Tensor, _ mask: Mask) -> Tensor {
        guard let scales = mask.scales else { return dy }
        precondition(scales.shape == dy.shape, "Dropout: dy \(dy.shape) vs mask \(scales.shape)")
        var dx = dy
        dx.withUnsafeMutableBufferPointer { d in
            scales.withUnsafeBufferPointer { Kernels.mul(d.count, d.baseAddress!, $0.baseAddress!, d.baseAddress!) }
        }
        return dx
    }

    /// Writes `count` multipliers (0 with probability p, else 1/(1 − p)) for callers that keep their own buffers;
    /// apply them with `Kernels.mul` in forward and backward alike.
    @inlinable
    public func drawMask(count: Int, into scales: UnsafeMutablePointer<Float>, rng: inout RNG) {
        let keep = 1 / (1 - probability)
        for i in 0..<count { scales[i] = rng.uniform() < probability ? 0 : keep }
    }
}
