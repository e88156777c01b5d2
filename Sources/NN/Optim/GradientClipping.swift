import TensorCore

/// Gradient clipping over a model's flat gradient buffer (trainable parameters only).
public enum GradientClipping {
    /// The global L2 norm of all trainable gradients, √(Σ g²) (accumulated in Double).
    public static func globalNorm(_ params: Parameters) -> Float {
        // Each tensor's sum on its own (in parallel), added up in layout order: the same result on any number
        // of threads.
        let trainable = params.layout.params.filter(\.trainable)
        var sums = [Double](repeating: 0, count: trainable.count)
        sums.withUnsafeMutableBufferPointer { out in
            parallelFor(trainable.count) { i in out[i] = Kernels.sumOfSquares(trainable[i].count, params.grad(trainable[i])) }
        }
        return Float(sums.reduce(0, +).squareRoot())
    }

    /// Clip by global norm, as `torch.nn.utils.clip_grad_norm_`: g ← g · min(1, δ / (‖g‖ + 1e-6)).
    /// Returns the norm before clipping.
    @discardableResult
    public static func clipByNorm(_ params: Parameters, maxNorm: Float) -> Float {
        let norm = globalNorm(params)
        let coefficient = maxNorm / (norm + 1e-6)
        if coefficient < 1 {
            for p in params.layout.params where p.trainable {
                Kernels.scale(p.count, coefficient, params.grad(p))
            }
        }
        return norm
    }

    /// Clip each gradient element to [−δ, δ], as `torch.nn.utils.clip_grad_value_` (and the
    /// tutorial's `clip_gradient`).
    public static func clipByValue(_ params: Parameters, maxValue: Float) {
        for p in params.layout.params where p.trainable {
            let g = params.grad(p)
            for i in 0..<p.count { g[i] = min(max(g[i], -maxValue), maxValue) }
        }
    }
}
