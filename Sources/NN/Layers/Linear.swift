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
    public let inFeatures: Int
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
        sgemm(transB: true, m: rows, n: outFeatures, k: inFeatures,
              a: x, lda: ldx ?? inFeatures, b: p.value(weight), ldb: inFeatures,
              beta: beta, c: y, ldc: ldy)
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
