import TensorCore

/// Batch normalisation over the channels of an `N×C×H×W` tensor (PyTorch `nn.BatchNorm2d`, affine,
/// tracking running statistics).
///
/// Parameters (PyTorch names): `weight` γ and `bias` β are trained; `running_mean`, `running_var` and
/// `num_batches_tracked` are buffers (`ParameterLayout.addBuffer`): they load and save with the model but
/// optimisers skip them (`Param.trainable == false`), and only `forward(training: true)` changes them.
/// `num_batches_tracked` is an int64 scalar in PyTorch; here it is one Float (exact to 2²⁴ batches).
///
/// Training normalises with the batch statistics (biased variance) and updates the running statistics with
/// `momentum` using the *unbiased* variance, exactly as PyTorch; evaluation normalises with the running ones.
public struct BatchNorm2d {
    /// Number of channels C normalised (dimension 1 of the input).
    public let channels: Int
    /// Added to the variance before the square root, for numerical safety (PyTorch's `eps`, default 1e-5).
    public let eps: Float
    /// Weight of the new batch statistic in the running average (PyTorch's `momentum`, default 0.1).
    public let momentum: Float
    /// C: the scale γ (`<name>.weight`), trained.
    public let weight: Param
    /// C: the shift β (`<name>.bias`), trained.
    public let bias: Param
    /// C: running mean buffer (`<name>.running_mean`), used in evaluation.
    public let runningMean: Param
    /// C: running unbiased variance buffer (`<name>.running_var`), used in evaluation.
    public let runningVar: Param
    /// Scalar buffer counting training batches that updated the running statistics (`<name>.num_batches_tracked`).
    public let numBatchesTracked: Param

    /// Reserves `<name>.weight`, `.bias` and the three buffers in `layout`; values are set by `initialize` or a checkpoint.
    public init(_ name: String, channels: Int, eps: Float = 1e-5, momentum: Float = 0.1, layout: inout ParameterLayout) {
        self.channels = channels
        self.eps = eps
        self.momentum = momentum
        weight = layout.add("\(name).weight", [channels])
        bias = layout.add("\(name).bias", [channels])
        runningMean = layout.addBuffer("\(name).running_mean", [channels])
        runningVar = layout.addBuffer("\(name).running_var", [channels])
        numBatchesTracked = layout.addBuffer("\(name).num_batches_tracked", [])
    }

    /// PyTorch's reset: γ = 1, β = 0, running mean 0, running variance 1, no batches tracked. (`rng` is unused;
    /// the signature matches the other layers' initialisers.) Pass `zeroGamma` for torchvision's
    /// `zero_init_residual` on a residual block's last BatchNorm.
    public func initialize(_ p: Parameters, rng: inout RNG, zeroGamma: Bool = false) {
        Kernels.fill(p.value(weight), channels, zeroGamma ? 0 : 1)
        Kernels.fill(p.value(bias), channels, 0)
        Kernels.fill(p.value(runningMean), channels, 0)
        Kernels.fill(p.value(runningVar), channels, 1)
        p.value(numBatchesTracked).pointee = 0
    }

    /// What backward needs besides the input: the per-channel mean and 1/√(var + eps) that forward
    /// normalised with (batch statistics in training, running ones in evaluation).
    public struct Cache {
        /// Whether forward used the batch statistics (then mean and variance depend on x in backward).
        public let training: Bool
        /// C: the per-channel mean forward subtracted.
        public let mean: [Float]
        /// C: the per-channel 1/√(var + eps) forward multiplied by.
        public let invstd: [Float]
    }

    /// `x: N×C×H×W → y` of the same shape: `y = (x − mean)·invstd·γ + β` per channel.
    /// With `training`, uses the batch statistics and (when `updateRunningStats`) updates the running ones.
    public func forward(_ x: Tensor, _ p: Parameters, training: Bool, updateRunningStats: Bool = true) -> (y: Tensor, cache: Cache) {
        precondition(x.rank == 4 && x.shape[1] == channels, "BatchNorm2d(\(channels)) got \(x.shape)")
        let n = x.shape[0], plane = x.shape[2] * x.shape[3], C = channels
        let m = n * plane
        var mean = [Float](repeating: 0, count: C)
        var invstd = [Float](repeating: 0, count: C)
        if training {
            precondition(m > 1, "BatchNorm2d: training needs more than one value per channel, got \(x.shape)")
            var biasedVar = [Double](repeating: 0, count: C)
            x.withUnsafeBufferPointer { xb in
                mean.withUnsafeMutableBufferPointer { meanb in
                    biasedVar.withUnsafeMutableBufferPointer { varb in
                        let x = xb.baseAddress!, meanp = meanb.baseAddress!, varp = varb.baseAddress!
                        parallelFor(C, minChunk: m * C >= 1 << 15 ? 1 : Int.max) { c in
                            // Two passes in Double: exact enough to match PyTorch's Welford to float precision.
                            var s = 0.0
                            for i in 0..<n { let row = x + (i * C + c) * plane; for j in 0..<plane { s += Double(row[j]) } }
                            let mu = s / Double(m)
                            var ss = 0.0
                            for i in 0..<n {
                                let row = x + (i * C + c) * plane
                                for j in 0..<plane { let d = Double(row[j]) - mu; ss += d * d }
                            }
                            meanp[c] = Float(mu)
                            varp[c] = ss / Double(m)
                        }
                    }
                }
            }
            for c in 0..<C { invstd[c] = Float(1 / (biasedVar[c] + Double(eps)).squareRoot()) }
            if updateRunningStats {
                let rm = p.value(runningMean), rv = p.value(runningVar)
                let unbias = Double(m) / Double(m - 1)
                for c in 0..<C {
                    rm[c] = (1 - momentum) * rm[c] + momentum * mean[c]
                    rv[c] = (1 - momentum) * rv[c] + momentum * Float(biasedVar[c] * unbias)
                }
                p.value(numBatchesTracked).pointee += 1
            }
        } else {
            let rm = p.value(runningMean), rv = p.value(runningVar)
            for c in 0..<C {
                mean[c] = rm[c]
                invstd[c] = 1 / (rv[c] + eps).squareRoot()
            }
        }
        // y = x·scale + shift, scale = γ·invstd, shift = β − mean·scale.
        let gamma = p.value(weight), beta = p.value(bias)
        var scale = [Float](repeating: 0, count: C), shift = [Float](repeating: 0, count: C)
        for c in 0..<C {
            scale[c] = gamma[c] * invstd[c]
            shift[c] = beta[c] - mean[c] * scale[c]
        }
        let y = BatchNorm2d.affine(x, scale: scale, shift: shift)
        return (y, Cache(training: training, mean: mean, invstd: invstd))
    }

    /// `y[i][c] = x[i][c]·scale[c] + shift[c]` over each plane.
    static func affine(_ x: Tensor, scale: [Float], shift: [Float]) -> Tensor {
        let n = x.shape[0], C = x.shape[1], plane = x.shape[2] * x.shape[3]
        return Tensor(shape: x.shape) { yb in
            x.withUnsafeBufferPointer { xb in
                let x = xb.baseAddress!, y = yb.baseAddress!
                parallelFor(n * C, minChunk: n * C * plane >= 1 << 16 ? 1 : Int.max) { item in
                    let c = item % C, a = scale[c], b = shift[c]
                    let src = x + item * plane, dst = y + item * plane
                    for j in 0..<plane { dst[j] = src[j] * a + b }
                }
            }
        }
    }

    /// Accumulates dγ, dβ into `p.grads` and returns dx, for the statistics in `cache`.
    ///
    /// With x̂ = (x − mean)·invstd, dγ = Σ dy·x̂ and dβ = Σ dy (sums over N, H, W). In training the mean and
    /// variance depend on x, which gives the full formula `dx = γ·invstd·(dy − dβ/M − x̂·dγ/M)` (M = N·H·W);
    /// in evaluation they are constants and `dx = γ·invstd·dy`.
    public func backward(_ dy: Tensor, input x: Tensor, cache: Cache, _ p: Parameters) -> Tensor {
        precondition(dy.shape == x.shape, "BatchNorm2d.backward: dy \(dy.shape) vs x \(x.shape)")
        let n = x.shape[0], C = channels, plane = x.shape[2] * x.shape[3]
        let m = Float(n * plane)
        let gamma = UnsafePointer(p.value(weight)), dgamma = p.grad(weight), dbeta = p.grad(bias)
        let training = cache.training
        return Tensor(shape: x.shape) { dxb in
            x.withUnsafeBufferPointer { xb in
                dy.withUnsafeBufferPointer { dyb in
                    cache.mean.withUnsafeBufferPointer { meanb in
                        cache.invstd.withUnsafeBufferPointer { invb in
                            let x = xb.baseAddress!, dy = dyb.baseAddress!, dx = dxb.baseAddress!
                            let meanp = meanb.baseAddress!, invp = invb.baseAddress!
                            // Each channel is independent (its own dγ[c], dβ[c], dx planes): parallel over C.
                            parallelFor(C, minChunk: C * n * plane >= 1 << 15 ? 1 : Int.max) { c in
                                let mu = meanp[c], inv = invp[c]
                                var sumDy = 0.0, sumDyXhat = 0.0
                                for i in 0..<n {
                                    let xr = x + (i * C + c) * plane, dyr = dy + (i * C + c) * plane
                                    for j in 0..<plane {
                                        sumDy += Double(dyr[j])
                                        sumDyXhat += Double(dyr[j]) * Double((xr[j] - mu) * inv)
                                    }
                                }
                                dgamma[c] += Float(sumDyXhat)
                                dbeta[c] += Float(sumDy)
                                let k = gamma[c] * inv
                                if training {
                                    let meanDy = Float(sumDy) / m, meanDyXhat = Float(sumDyXhat) / m
                                    for i in 0..<n {
                                        let o = (i * C + c) * plane
                                        let xr = x + o, dyr = dy + o, dxr = dx + o
                                        for j in 0..<plane {
                                            dxr[j] = k * (dyr[j] - meanDy - (xr[j] - mu) * inv * meanDyXhat)
                                        }
                                    }
                                } else {
                                    for i in 0..<n {
                                        let o = (i * C + c) * plane
                                        let dyr = dy + o, dxr = dx + o
                                        for j in 0..<plane { dxr[j] = k * dyr[j] }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Folds this (evaluation-mode) normalisation into the convolution before it, for inference:
    /// `W'[o] = W[o]·γ[o]/√(var[o]+eps)`, `b'[o] = β[o] + (b[o] − mean[o])·γ[o]/√(var[o]+eps)`
    /// (b = 0 when the convolution has no bias). Run the result with
    /// `conv.forward(x, weight: W', bias: b')`, or copy it into a biased convolution's parameters.
    public func fold(_ conv: Conv2d, _ p: Parameters) -> (weight: Tensor, bias: Tensor) {
        precondition(conv.outChannels == channels, "fold: conv has \(conv.outChannels) outputs, BatchNorm \(channels)")
        let perOut = conv.weight.count / channels
        let w = p.value(conv.weight), b = conv.bias.map { p.value($0) }
        let gamma = p.value(weight), beta = p.value(bias), rm = p.value(runningMean), rv = p.value(runningVar)
        var foldedW = Tensor(shape: conv.weight.shape), foldedB = Tensor(shape: [channels])
        for o in 0..<channels {
            let s = gamma[o] / (rv[o] + eps).squareRoot()
            for i in 0..<perOut { foldedW.storage[o * perOut + i] = w[o * perOut + i] * s }
            foldedB.storage[o] = beta[o] + ((b?[o] ?? 0) - rm[o]) * s
        }
        return (foldedW, foldedB)
    }
}
