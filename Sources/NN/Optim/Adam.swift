#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
import CKernels
import TensorCore

/// Adam (Kingma & Ba 2015) with PyTorch's `torch.optim.Adam` semantics, over a model's flat buffers.
///
/// Per element, at step t (1-based):
///   g ← g + weightDecay·θ                      (L2 penalty folded into the gradient, as PyTorch does)
///   m ← β1·m + (1−β1)·g,   v ← β2·v + (1−β2)·g²
///   θ ← θ − lr · (m / (1−β1ᵗ)) / (√(v / (1−β2ᵗ)) + ε)
/// Non-trainable buffers (BatchNorm running statistics) are skipped. The learning rate can be
/// different per parameter group (e.g. a fine-tuned encoder), chosen by parameter-name prefix.
public final class Adam {
    /// Step size lr for parameters not matched by `groupLearningRates`.
    public var learningRate: Float
    /// Decay rate β1 of the first moment (mean of gradients).
    public var beta1: Float
    /// Decay rate β2 of the second moment (mean of squared gradients).
    public var beta2: Float
    /// ε added to the denominator's square root, so tiny second moments do not blow up the step.
    public var eps: Float
    /// L2 penalty coefficient added to the gradient as `weightDecay·θ` (0 disables it).
    public var weightDecay: Float
    /// Learning rates for parameters whose name starts with a prefix (first match wins); the rest use
    /// `learningRate`.
    public var groupLearningRates: [String: Float]
    /// Number of steps taken (PyTorch's `state['step']`).
    public private(set) var step: Int = 0
    /// First and second moment estimates (`exp_avg`, `exp_avg_sq`), same layout as the parameter
    /// buffer. Checkpoints save them with `step` and restore them through `restore`.
    public private(set) var m: [Float]
    /// Second moment estimate (`exp_avg_sq`), one per parameter value.
    public private(set) var v: [Float]

    /// An optimiser for a flat buffer of `count` values, with zero moments and no steps taken; defaults are PyTorch's.
    public init(count: Int, learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999,
                eps: Float = 1e-8, weightDecay: Float = 0, groupLearningRates: [String: Float] = [:]) {
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.weightDecay = weightDecay
        self.groupLearningRates = groupLearningRates
        m = [Float](repeating: 0, count: count)
        v = [Float](repeating: 0, count: count)
    }

    /// Restores the state saved from `step`, `m` and `v` (for an exact resume).
    public func restore(step: Int, m: [Float], v: [Float]) {
        precondition(m.count == self.m.count && v.count == self.v.count, "Adam state size mismatch")
        self.step = step
        self.m = m
        self.v = v
    }

    /// Learning rate used for parameter `p`.
    public func learningRate(for p: Param) -> Float {
        for (prefix, lr) in groupLearningRates.sorted(by: { $0.key.count > $1.key.count }) where p.name.hasPrefix(prefix) {
            return lr
        }
        return learningRate
    }

    /// Applies one update to every trainable parameter of `params` from its accumulated gradients.
    public func update(_ params: Parameters) {
        precondition(params.count == m.count, "Adam state is for \(m.count) values, model has \(params.count)")
        step += 1
        // PyTorch computes the bias corrections in double precision from Python floats.
        let bc1 = 1 - pow(Double(beta1), Double(step))
        let bc2 = 1 - pow(Double(beta2), Double(step))
        let sqrtBC2 = Float(bc2.squareRoot())
        let b1 = beta1, b2 = beta2, eps = eps, wd = weightDecay
        let values = params.values, grads = params.grads
        // The trainable ranges of the flat buffers with their step sizes, split evenly over the workers
        // (one pass over θ, g, m and v, vectorised in CKernels).
        let segments = params.layout.params.filter(\.trainable).map {
            (start: $0.offset, end: $0.offset + $0.count, stepSize: Float(Double(learningRate(for: $0)) / bc1))
        }
        let total = segments.reduce(0) { $0 + $1.end - $1.start }
        let workers = min(Threads.count, max(1, total / (1 << 16)))
        m.withUnsafeMutableBufferPointer { mb in
            v.withUnsafeMutableBufferPointer { vb in
                let mp = mb.baseAddress!, vp = vb.baseAddress!
                parallelFor(workers) { worker in
                    // This worker's share, [from, to) in the concatenation of the trainable ranges.
                    let from = total * worker / workers, to = total * (worker + 1) / workers
                    var position = 0
                    for segment in segments {
                        let length = segment.end - segment.start
                        defer { position += length }
                        let lo = max(from, position), hi = min(to, position + length)
                        if lo >= hi { continue }
                        // The same operation order as torch.optim.Adam's single-tensor path (see ck_adam_update):
                        // m.lerp_(g, 1−β1); v.mul_(β2).addcmul_(g, g, 1−β2);
                        // denom = √v / √bc2 + ε; θ.addcdiv_(m, denom, −lr/bc1). The same bits wherever a range is cut.
                        let i = segment.start + lo - position
                        ck_adam_update(hi - lo, values + i, grads + i, mp + i, vp + i, b1, b2, eps, wd, segment.stepSize, sqrtBC2)
                    }
                }
            }
        }
    }
}
