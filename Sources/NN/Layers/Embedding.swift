import TensorCore

/// Lookup table of `count` vectors of size `dimension` (PyTorch `nn.Embedding`); parameter `<name>.weight`
/// (count × dimension).
public struct Embedding {
    /// Number of rows (the vocabulary size); tokens must lie in `0..<count`.
    public let count: Int
    /// Length of each embedding vector.
    public let dimension: Int
    /// count × dimension
    public let weight: Param

    /// Reserves `<name>.weight` (count × dimension) in `layout`.
    public init(_ name: String, count: Int, dimension: Int, layout: inout ParameterLayout) {
        self.count = count
        self.dimension = dimension
        weight = layout.add(name + ".weight", [count, dimension])
    }

    /// PyTorch's default: N(0, 1).
    public func initializePyTorchDefault(_ p: Parameters, rng: inout RNG) {
        let w = p.value(weight)
        for i in 0..<weight.count { w[i] = rng.normal() }
    }

    /// U(−bound, bound), as the captioning tutorial initialises its word embeddings (bound 0.1).
    public func initializeUniform(_ p: Parameters, bound: Float, rng: inout RNG) {
        let w = p.value(weight)
        for i in 0..<weight.count { w[i] = rng.uniform(-bound, bound) }
    }

    /// `tokens` (n) → n × dimension.
    public func forward(_ tokens: [Int], _ p: Parameters) -> Tensor {
        var y = Tensor(shape: [tokens.count, dimension])
        y.withUnsafeMutableBufferPointer { yb in
            tokens.withUnsafeBufferPointer { forward(rows: $0.count, tokens: $0.baseAddress!, into: yb.baseAddress!, p) }
        }
        return y
    }

    /// Accumulates `dW[token] += dy[row]` for every row (repeated tokens add up). Embeddings have no input gradient.
    public func backward(_ dy: Tensor, tokens: [Int], _ p: Parameters) {
        precondition(dy.shape == [tokens.count, dimension], "Embedding: dy \(dy.shape) for \(tokens.count) tokens")
        dy.withUnsafeBufferPointer { db in
            tokens.withUnsafeBufferPointer { accumulateGradients(rows: $0.count, tokens: $0.baseAddress!, dy: db.baseAddress!, p) }
        }
    }

    /// Gathers rows: `y[r] = W[tokens[r]]`, rows `ldy` apart (default dense).
    @inlinable
    public func forward(rows: Int, tokens: UnsafePointer<Int>, into y: UnsafeMutablePointer<Float>,
                        ldy: Int? = nil, _ p: Parameters) {
        let w = UnsafePointer(p.value(weight))
        let ldy = ldy ?? dimension
        for r in 0..<rows {
            let t = tokens[r]
            precondition(t >= 0 && t < count, "Embedding: token \(t) outside 0..<\(count)")
            (y + r * ldy).update(from: w + t * dimension, count: dimension)
        }
    }

    /// Scatter-adds rows of `dy` (rows `ldy` apart) into the gradient rows of their tokens.
    @inlinable
    public func accumulateGradients(rows: Int, tokens: UnsafePointer<Int>, dy: UnsafePointer<Float>,
                                    ldy: Int? = nil, _ p: Parameters) {
        let g = p.grad(weight)
        let ldy = ldy ?? dimension
        for r in 0..<rows {
            let dst = g + tokens[r] * dimension, src = dy + r * ldy
            for j in 0..<dimension { dst[j] += src[j] }
        }
    }
}
