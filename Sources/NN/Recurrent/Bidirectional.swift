import TensorCore

/// Runs one cell forward in time and a second one backward in time over the same sequence and concatenates
/// their outputs per step, as one layer of PyTorch's `nn.LSTM(bidirectional=True)` (or GRU/RNN) does:
/// `output[t] = [h_fwd(t) ; h_rev(t)]`, where `h_rev(t)` has seen `x[t...]`.
///
/// PyTorch names the reverse direction's parameters with a `_reverse` suffix (`weight_ih_l0_reverse`); build
/// the two cells with suffixes `_l<k>` and `_l<k>_reverse` (as `RecurrentStack` does).
public struct Bidirectional<Cell: RecurrentCell> {
    /// The cell run from t = 0 to T−1 (suffix `_l<k>`).
    public let forwardCell: Cell
    /// The cell run from t = T−1 down to 0 (suffix `_l<k>_reverse`).
    public let reverseCell: Cell

    /// Pairs two cells; they must have the same input and hidden sizes.
    public init(forward: Cell, reverse: Cell) {
        precondition(forward.inputSize == reverse.inputSize && forward.hiddenSize == reverse.hiddenSize)
        forwardCell = forward
        reverseCell = reverse
    }

    /// Per-step input width `in`, shared by both directions.
    public var inputSize: Int { forwardCell.inputSize }
    /// Per-step output width: 2H.
    public var outputSize: Int { 2 * forwardCell.hiddenSize }

    /// What `backward` needs from `forward`: one sequence cache per direction.
    public struct Cache {
        /// The forward-in-time cell's cache.
        public let forward: SequenceCache<Cell>
        /// The reverse-in-time cell's cache.
        public let reverse: SequenceCache<Cell>
    }

    /// PyTorch's default U(−1/√H, 1/√H) for both cells, forward cell first.
    public func initializePyTorchDefault(_ p: Parameters, rng: inout RNG) {
        forwardCell.initializePyTorchDefault(p, rng: &rng)
        reverseCell.initializePyTorchDefault(p, rng: &rng)
    }

    /// `x` (T×B×in) → output (T×B×2H), the final state of each direction (the reverse one's is at t = 0), cache.
    public func forward(_ x: Tensor, initialForward: RecurrentState? = nil, initialReverse: RecurrentState? = nil,
                        _ p: Parameters) -> (output: Tensor, finalForward: RecurrentState, finalReverse: RecurrentState, cache: Cache) {
        let (outF, finalF, cacheF) = forwardCell.forwardSequence(x, initialState: initialForward, p)
        let (outR, finalR, cacheR) = reverseCell.forwardSequence(x, initialState: initialReverse, reverse: true, p)
        return (Bidirectional.interleave(outF, outR), finalF, finalR, Cache(forward: cacheF, reverse: cacheR))
    }

    /// `dOutput` (T×B×2H) and optional final-state gradients → dx (T×B×in) and the initial-state gradients.
    public func backward(_ dOutput: Tensor?, dFinalForward: RecurrentState? = nil, dFinalReverse: RecurrentState? = nil,
                         _ cache: Cache, truncation: TruncatedBPTT? = nil, _ p: Parameters)
        -> (dx: Tensor, dInitialForward: RecurrentState, dInitialReverse: RecurrentState) {
        let halves = dOutput.map { Bidirectional.split($0) }
        let (dxF, dInitF) = forwardCell.backwardSequence(halves?.0, dFinal: dFinalForward, cache.forward,
                                                         truncation: truncation, p)
        var (dx, dInitR) = reverseCell.backwardSequence(halves?.1, dFinal: dFinalReverse, cache.reverse,
                                                        truncation: truncation, p)
        addRows(dxF, into: &dx, at: 0)
        return (dx, dInitF, dInitR)
    }

    /// [T×B×H, T×B×H] → T×B×2H, forward half first.
    static func interleave(_ a: Tensor, _ b: Tensor) -> Tensor {
        let (steps, batch, hs) = (a.shape[0], a.shape[1], a.shape[2])
        var out = Tensor(shape: [steps, batch, 2 * hs])
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                out.withUnsafeMutableBufferPointer { po in
                    for r in 0..<(steps * batch) {
                        (po.baseAddress! + r * 2 * hs).update(from: pa.baseAddress! + r * hs, count: hs)
                        (po.baseAddress! + r * 2 * hs + hs).update(from: pb.baseAddress! + r * hs, count: hs)
                    }
                }
            }
        }
        return out
    }

    /// T×B×2H → its forward and reverse halves.
    static func split(_ x: Tensor) -> (Tensor, Tensor) {
        let (steps, batch, hs) = (x.shape[0], x.shape[1], x.shape[2] / 2)
        var a = Tensor(shape: [steps, batch, hs]), b = Tensor(shape: [steps, batch, hs])
        x.withUnsafeBufferPointer { px in
            a.withUnsafeMutableBufferPointer { pa in
                b.withUnsafeMutableBufferPointer { pb in
                    for r in 0..<(steps * batch) {
                        (pa.baseAddress! + r * hs).update(from: px.baseAddress! + r * 2 * hs, count: hs)
                        (pb.baseAddress! + r * hs).update(from: px.baseAddress! + r * 2 * hs + hs, count: hs)
                    }
                }
            }
        }
        return (a, b)
    }
}
