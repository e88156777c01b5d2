import TensorCore

/// Fully connected layer `y = x·Wᵀ + b` (PyTorch `nn.Linear`).
///
/// Parameters: `<name>.weight` (out×in, PyTorch layout) and optionally `<name>.bias` (out).
/// Inputs of any rank are treated as `rows × inFeatures` (all leading dimensions flattened), like PyTorch.
///
/// Two levels of API:
/// - `forward(_:_:)` / `backward(_:input:_:)` on tensors, for models built from whole layers;
/// - raw-pointer `forward(rows:...)`, `backwardInput(rows:...)`, `accumulateGradients(rows:...)` for hot loops
///   (the attention decoder, recurrent runners) that keep their activations in preallocated, possibly strided,
///   buffers and want the weight gradient of many steps in one SGEMM.
public struct Linear {
    /// Input features (`in`, the last dimension of x).
    public let inFeatures: Int
    /// Output features (`out`, the last dimension of y).
    public let outFeatures: Int
    /// out × in
    public let weight: Param
    /// out, or nil for `bias: false`
    public let bias: Param?

    /// Reserves `<name>.weight` (and `<name>.bias`) in `layout`.
    public init(_ name: String, inFeatures: Int, outFeatures: Int, bias: Bool = true,
                layout: inout ParameterLayout) {
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        weight = layout.add(name + ".weight", [outFeatures, inFeatures])
        self.bias = bias ? layout.add(name + ".bias", [outFeatures]) : nil
    }

    /// PyTorch's default initialisation: weight and bias from U(−1/√in, 1/√in)
    /// (`kaiming_uniform_(a=√5)` reduces to exactly this bound).
    public func initializePyTorchDefault(_ p: Parameters, rng: inout RNG) {
        let bound = 1 / Float(inFeatures).squareRoot()
        initializeUniform(p, weightBound: bound, biasBound: bound, rng: &rng)
    }

    /// Weight from U(−weightBound, weightBound); bias from U(−biasBound, biasBound), or zero when `biasBound` is 0.
    public func initializeUniform(_ p: Parameters, weightBound: Float, biasBound: Float, rng: inout RNG) {
        let w = p.value(weight)
        for i in 0..<weight.count { w[i] = rng.uniform(-weightBound, weightBound) }
        if let bias {
            let b = p.value(bias)
            for i in 0..<bias.count { b[i] = biasBound == 0 ? 0 : rng.uniform(-biasBound, biasBound) }
        }
    }

    // MARK: Tensor API

    /// `x`: …×in → …×out.
    public func forward(_ x: Tensor, _ p: Parameters) -> Tensor {
        precondition(x.shape.last == inFeatures, "Linear: input \(x.shape), expected last dimension \(inFeatures)")
        let rows = x.count / max(1, inFeatures)
        var y = Tensor(shape: Array(x.shape.dropLast()) + [outFeatures])
        x.withUnsafeBufferPointer { xb in
            y.withUnsafeMutableBufferPointer { yb in
                forward(rows: rows, xb.baseAddress!, into: yb.baseAddress!, p)
            }
        }
        return y
    }

    /// Accumulates `dW += dyᵀ·x`, `db += Σ_rows dy` into `p.grads` and returns `dx = dy·W` (shape of `x`).
    public func backward(_ dy: Tensor, input x: Tensor, _ p: Parameters) -> Tensor {
        precondition(dy.shape.last == outFeatures && dy.count / outFeatures == x.count / inFeatures,
                     "Linear: dy \(dy.shape) does not match input \(x.shape)")
        let rows = x.count / max(1, inFeatures)
        var dx = Tensor(shape: x.shape)
        dy.withUnsafeBufferPointer { dyb in
            x.withUnsafeBufferPointer { xb in
                accumulateGradients(rows: rows, dy: dyb.baseAddress!, input: xb.baseAddress!, p)
            }
            dx.withUnsafeMutableBufferPointer { dxb in
                backwardInput(rows: rows, dy: dyb.baseAddress!, into: dxb.baseAddress!, p)
            }
        }
        return dx
    }

    // MARK: Raw-pointer API (row-major, optional row strides)

    /// `y[rows×out] = x[rows×in]·Wᵀ + b`, or `y += x·Wᵀ + b` when `accumulate`.
    /// `ldx` / `ldy` are row strides (default: dense rows).
    @inlinable
    public func forward(rows: Int, _ x: UnsafePointer<Float>, ldx: Int? = nil,
                        into y: UnsafeMutablePointer<Float>, ldy: Int? = nil,
                        accumulate: Bool = false, _ p: Parameters) {
        if rows == 0 { return }
        let ldy = ldy ?? outFeatures
        var beta: Float = accumulate ? 1 : 0
        if let bias {
            // Bias first, then let SGEMM add the product onto it (beta = 1): one pass over y.
            let b = UnsafePointer(p.value(bias))
            for r in 0..<rows {
                let row = y + r * ldy
                if accumulate { for j in 0..<outFeatures { row[j] += b[j] } }
                else { row.update(from: b, count: outFeatures) }
            }
            beta = 1
        }
        Linear.multiplyTransposed(rows: rows, inFeatures: inFeatures, outFeatures: outFeatures, x, ldx: ldx ?? inFeatures,
                                  weight: p.value(weight), into: y, ldy: ldy, beta: beta)
    }

    /// Rows up to which `multiplyTransposed` streams the weight itself instead of calling SGEMM.
    public static let streamingRows = 6

    /// `y[rows×out] = x[rows×in]·Wᵀ + beta·y` for a row-major `W` (out×in): the product behind every
    /// PyTorch-layout linear map (Linear, the recurrent cells' projections).
    ///
    /// For a handful of rows (step-wise decoding, beam search) the cost is reading `W` from memory, and SGEMM
    /// spends more time packing `W` than multiplying, while SGEMV would read it once per row. So up to
    /// `streamingRows` rows, this reads each weight row once for up to three input rows at a time (SIMD dot
    /// products, outputs split over `Threads.count` workers); larger batches go to SGEMM.
    public static func multiplyTransposed(rows: Int, inFeatures: Int, outFeatures: Int,
                                          _ x: UnsafePointer<Float>, ldx: Int,
                                          weight w: UnsafePointer<Float>,
                                          into y: UnsafeMutablePointer<Float>, ldy: Int, beta: Float) {
        if rows == 0 || outFeatures == 0 { return }
        guard rows <= streamingRows else {
            sgemm(transB: true, m: rows, n: outFeatures, k: inFeatures, a: x, lda: ldx, b: w, ldb: inFeatures,
                  beta: beta, c: y, ldc: ldy)
            return
        }
        // Split the outputs in contiguous ranges, one per worker, only when there is enough work to pay for it.
        let workers = min(Threads.count, max(1, outFeatures * inFeatures / 262_144))
        parallelFor(workers) { worker in
            let lo = outFeatures * worker / workers, hi = outFeatures * (worker + 1) / workers
            var first = 0
            while first < rows {
                let count = min(3, rows - first)
                let x0 = x + first * ldx, y0 = y + first * ldy
                switch count {
                case 3: streamRows(3, n: inFeatures, lo: lo, hi: hi, w, x0, x0 + ldx, x0 + 2 * ldx,
                                   y0, y0 + ldy, y0 + 2 * ldy, beta: beta)
                case 2: streamRows(2, n: inFeatures, lo: lo, hi: hi, w, x0, x0 + ldx, x0,
                                   y0, y0 + ldy, y0, beta: beta)
                default: streamRows(1, n: inFeatures, lo: lo, hi: hi, w, x0, x0, x0, y0, y0, y0, beta: beta)
                }
                first += count
            }
        }
    }

    /// Outputs `lo..<hi` of up to three rows (`count`, a constant at every call site so the branches fold away):
    /// `y_r[o] = W[o]·x_r + beta·y_r[o]`. SIMD4 is the native width of the baseline x86-64 target; two accumulators
    /// per row hide the add latency.
    @inline(__always)
    static func streamRows(_ count: Int, n: Int, lo: Int, hi: Int, _ w: UnsafePointer<Float>,
                           _ x0: UnsafePointer<Float>, _ x1: UnsafePointer<Float>, _ x2: UnsafePointer<Float>,
                           _ y0: UnsafeMutablePointer<Float>, _ y1: UnsafeMutablePointer<Float>,
                           _ y2: UnsafeMutablePointer<Float>, beta: Float) {
        @inline(__always) func load4(_ p: UnsafePointer<Float>) -> SIMD4<Float> {
            UnsafeRawPointer(p).loadUnaligned(as: SIMD4<Float>.self)
        }
        for o in lo..<hi {
            let wr = w + o * n
            var a0 = SIMD4<Float>(), a1 = SIMD4<Float>(), a2 = SIMD4<Float>()
            var b0 = SIMD4<Float>(), b1 = SIMD4<Float>(), b2 = SIMD4<Float>()
            var i = 0
            while i + 8 <= n {
                let wa = load4(wr + i), wb = load4(wr + i + 4)
                a0 += wa * load4(x0 + i); b0 += wb * load4(x0 + i + 4)
                if count > 1 { a1 += wa * load4(x1 + i); b1 += wb * load4(x1 + i + 4) }
                if count > 2 { a2 += wa * load4(x2 + i); b2 += wb * load4(x2 + i + 4) }
                i += 8
            }
            var s0 = (a0 + b0).sum(), s1 = (a1 + b1).sum(), s2 = (a2 + b2).sum()
            while i < n {
                s0 += wr[i] * x0[i]
                if count > 1 { s1 += wr[i] * x1[i] }
                if count > 2 { s2 += wr[i] * x2[i] }
                i += 1
            }
            y0[o] = beta == 0 ? s0 : beta * y0[o] + s0
            if count > 1 { y1[o] = beta == 0 ? s1 : beta * y1[o] + s1 }
            if count > 2 { y2[o] = beta == 0 ? s2 : beta * y2[o] + s2 }
        }
    }

    /// `dW += dyᵀ·x` (one SGEMM over all rows) and `db += Σ_rows dy`.
    @inlinable
    public func accumulateGradients(rows: Int, dy: UnsafePointer<Float>, ldy: Int? = nil,
                                    input x: UnsafePointer<Float>, ldx: Int? = nil, _ p: Parameters) {
        if rows == 0 { return }
        let ldy = ldy ?? outFeatures
        sgemm(transA: true, m: outFeatures, n: inFeatures, k: rows,
              a: dy, lda: ldy, b: x, ldb: ldx ?? inFeatures,
              beta: 1, c: p.grad(weight), ldc: inFeatures)
        if let bias { Linear.accumulateColumnSums(rows: rows, columns: outFeatures, dy, ld: ldy, into: p.grad(bias)) }
    }

    /// `dx = dy·W` (rows×in), or `dx += dy·W` when `accumulate`.
    @inlinable
    public func backwardInput(rows: Int, dy: UnsafePointer<Float>, ldy: Int? = nil,
                              into dx: UnsafeMutablePointer<Float>, ldx: Int? = nil,
                              accumulate: Bool = false, _ p: Parameters) {
        if rows == 0 { return }
        sgemm(m: rows, n: inFeatures, k: outFeatures,
              a: dy, lda: ldy ?? outFeatures, b: p.value(weight), ldb: inFeatures,
              beta: accumulate ? 1 : 0, c: dx, ldc: ldx ?? inFeatures)
    }

    /// `out[j] += Σ_r m[r, j]`: a bias gradient. Row by row so the inner loop vectorises.
    @inlinable
    public static func accumulateColumnSums(rows: Int, columns: Int, _ m: UnsafePointer<Float>, ld: Int,
                                            into out: UnsafeMutablePointer<Float>) {
        for r in 0..<rows {
            let row = m + r * ld
            for j in 0..<columns { out[j] += row[j] }
        }
    }
}
