import TensorCore

/// The state a recurrent cell carries between steps for a batch of B sequences: `h` (B×H) and, for LSTMs,
/// the cell state `c` (B×H). As a gradient, a nil `c` (or a zero-sized `h`) means "no gradient flows here".
public struct RecurrentState {
    /// B×H: the hidden state (or its gradient).
    public var h: Tensor
    /// B×H: the LSTM cell state (or its gradient); nil for cells without one, or no gradient.
    public var c: Tensor?

    /// A state from `h` (B×H) and, for LSTMs, `c` (B×H).
    public init(h: Tensor, c: Tensor? = nil) {
        self.h = h
        self.c = c
    }

    /// All-zero state for `batch` rows of `hiddenSize`, with a cell state when `withCell`.
    public static func zeros(batch: Int, hiddenSize: Int, withCell: Bool) -> RecurrentState {
        let z = Tensor(shape: [batch, hiddenSize])
        return RecurrentState(h: z, c: withCell ? z : nil)
    }
}

/// A single-step recurrent cell with PyTorch's parameterisation: `weight_ih` (G·H × in), `weight_hh` (G·H × H),
/// `bias_ih`, `bias_hh` (G·H), gate blocks stacked in PyTorch's order (LSTM i,f,g,o; GRU r,z,n; RNN one block).
///
/// A step is split at the input projection `x·W_ihᵀ + b_ih`, because that part does not depend on the
/// recurrence: sequence runners compute it for all T steps in one SGEMM before the loop, and accumulate its
/// weight gradient in one SGEMM after the backward loop (as cuDNN does). The cell itself implements only the
/// recurrent part (`step` / `stepBackward`); protocol extensions add the full single-step `forward` / `backward`
/// and the sequence runner (`forwardSequence` / `backwardSequence`).
public protocol RecurrentCell {
    /// What `stepBackward` needs from `step` (activations; never the weights).
    associatedtype StepCache

    var inputSize: Int { get }
    var hiddenSize: Int { get }
    /// Number of H-sized gate blocks stacked in the weights: 4 (LSTM), 3 (GRU), 1 (RNN).
    var gateCount: Int { get }
    /// Whether the state has a cell component `c` (LSTM).
    var hasCellState: Bool { get }

    var weightIH: Param { get }
    var weightHH: Param { get }
    var biasIH: Param? { get }
    var biasHH: Param? { get }

    /// One step of the recurrence for B rows, given the input projection `x·W_ihᵀ + b_ih` (B × G·H).
    /// Returns the new state and the cache for `stepBackward`.
    func step(inputProjection: Tensor, state: RecurrentState, _ p: Parameters) -> (RecurrentState, StepCache)

    /// Backward of `step`. Given dL/d(new state) it returns
    /// - `dInputProjection` (B × G·H): gradient wrt `x·W_ihᵀ + b_ih`,
    /// - `dHiddenProjection` (B × G·H): gradient wrt `h·W_hhᵀ + b_hh` (differs from the input one only for GRU),
    /// - `dPrevious`: gradient wrt the previous state, including the path through `W_hh`.
    /// It does not touch parameter gradients: callers accumulate the weight gradients from the two projection
    /// gradients (`accumulateInputGradients`, `accumulateHiddenGradients`), per step or batched over a sequence.
    func stepBackward(_ dState: RecurrentState, _ cache: StepCache, _ p: Parameters)
        -> (dInputProjection: Tensor, dHiddenProjection: Tensor, dPrevious: RecurrentState)
}

/// Cache of one full single step (`RecurrentCell.forward`): the step input, the previous hidden state and the
/// cell's own cache.
public struct RecurrentStepCache<Step> {
    /// B×in: the step input x.
    public let input: Tensor
    /// B×H: the hidden state the step started from (for the `W_hh` gradient).
    public let previousHidden: Tensor
    /// The cell's own `StepCache`.
    public let step: Step
}

extension RecurrentCell {
    /// Rows of the stacked weights: G·H.
    @inlinable public var gateRows: Int { gateCount * hiddenSize }

    /// PyTorch's default initialisation for recurrent cells and `nn.LSTM`/`nn.GRU`/`nn.RNN`: every weight and
    /// bias from U(−1/√H, 1/√H).
    public func initializePyTorchDefault(_ p: Parameters, rng: inout RNG) {
        let bound = 1 / Float(hiddenSize).squareRoot()
        for param in [weightIH, weightHH, biasIH, biasHH].compactMap({ $0 }) {
            let v = p.value(param)
            for i in 0..<param.count { v[i] = rng.uniform(-bound, bound) }
        }
    }

    /// All-zero state for `batch` rows (B×H, plus c when the cell has one).
    public func zeroState(batch: Int) -> RecurrentState {
        .zeros(batch: batch, hiddenSize: hiddenSize, withCell: hasCellState)
    }

    /// `x` (N×in) → `x·W_ihᵀ + b_ih` (N × G·H), one SGEMM for all rows (all steps of a sequence at once).
    public func projectInput(_ x: Tensor, _ p: Parameters) -> Tensor {
        precondition(x.rank == 2 && x.shape[1] == inputSize, "\(Self.self): input \(x.shape), expected N×\(inputSize)")
        var out = Tensor(shape: [x.shape[0], gateRows])
        x.withUnsafeBufferPointer { xb in
            out.withUnsafeMutableBufferPointer { ob in
                project(rows: x.shape[0], xb.baseAddress!, columns: inputSize, weight: weightIH, bias: biasIH,
                        into: ob.baseAddress!, accumulate: false, p)
            }
        }
        return out
    }

    /// `h` (B×H) → `h·W_hhᵀ + b_hh` (B × G·H), written into `out` (dense rows), or added to it when `accumulate`.
    public func projectHidden(rows: Int, _ h: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>,
                              accumulate: Bool, _ p: Parameters) {
        project(rows: rows, h, columns: hiddenSize, weight: weightHH, bias: biasHH, into: out,
                accumulate: accumulate, p)
    }

    func project(rows: Int, _ x: UnsafePointer<Float>, columns: Int, weight: Param, bias: Param?,
                 into out: UnsafeMutablePointer<Float>, accumulate: Bool, _ p: Parameters) {
        let g = gateRows
        if let bias {
            let b = UnsafePointer(p.value(bias))
            for r in 0..<rows {
                let row = out + r * g
                if accumulate { for j in 0..<g { row[j] += b[j] } } else { row.update(from: b, count: g) }
            }
        }
        Linear.multiplyTransposed(rows: rows, inFeatures: columns, outFeatures: g, x, ldx: columns,
                                  weight: p.value(weight), into: out, ldy: g, beta: (bias == nil && !accumulate) ? 0 : 1)
    }

    /// `dW_ih += dProjᵀ·x`, `db_ih += Σ dProj` over all N rows, and returns `dx = dProj·W_ih` (N×in).
    public func accumulateInputGradients(_ dProjection: Tensor, input x: Tensor, _ p: Parameters) -> Tensor {
        let n = x.shape[0]
        precondition(dProjection.shape == [n, gateRows] && x.shape == [n, inputSize])
        accumulate(dProjection, x, columns: inputSize, weight: weightIH, bias: biasIH, p)
        var dx = Tensor(shape: [n, inputSize])
        dProjection.withUnsafeBufferPointer { db in
            dx.withUnsafeMutableBufferPointer { dxb in
                sgemm(m: n, n: inputSize, k: gateRows, a: db.baseAddress!, b: p.value(weightIH), c: dxb.baseAddress!)
            }
        }
        return dx
    }

    /// `dW_hh += dProjᵀ·hPrev`, `db_hh += Σ dProj` over all N rows (the input-to-`h` gradient is already in
    /// `stepBackward`'s `dPrevious`).
    public func accumulateHiddenGradients(_ dProjection: Tensor, previousHidden h: Tensor, _ p: Parameters) {
        precondition(dProjection.shape == [h.shape[0], gateRows] && h.shape == [h.shape[0], hiddenSize])
        accumulate(dProjection, h, columns: hiddenSize, weight: weightHH, bias: biasHH, p)
    }

    private func accumulate(_ d: Tensor, _ x: Tensor, columns: Int, weight: Param, bias: Param?, _ p: Parameters) {
        let n = x.shape[0]
        if n == 0 { return }
        d.withUnsafeBufferPointer { db in
            x.withUnsafeBufferPointer { xb in
                sgemm(transA: true, m: gateRows, n: columns, k: n, a: db.baseAddress!, b: xb.baseAddress!,
                      beta: 1, c: p.grad(weight))
            }
            if let bias {
                Linear.accumulateColumnSums(rows: n, columns: gateRows, db.baseAddress!, ld: gateRows, into: p.grad(bias))
            }
        }
    }

    // MARK: One full step (PyTorch `nn.LSTMCell` / `nn.GRUCell` / `nn.RNNCell` forward)

    /// `x` (B×in), `state` (B×H each) → new state (h' and, for LSTM, c') and the cache for `backward`.
    public func forward(_ x: Tensor, _ state: RecurrentState, _ p: Parameters)
        -> (RecurrentState, RecurrentStepCache<StepCache>) {
        let (next, cache) = step(inputProjection: projectInput(x, p), state: state, p)
        return (next, RecurrentStepCache(input: x, previousHidden: state.h, step: cache))
    }

    /// Given dL/dh' (and dL/dc' for LSTM; nil = 0), accumulates all four parameter gradients and returns
    /// dL/dx (B×in) and dL/d(previous state).
    public func backward(_ dState: RecurrentState, _ cache: RecurrentStepCache<StepCache>, _ p: Parameters)
        -> (dx: Tensor, dPrevious: RecurrentState) {
        let (dIn, dHid, dPrev) = stepBackward(dState, cache.step, p)
        accumulateHiddenGradients(dHid, previousHidden: cache.previousHidden, p)
        let dx = accumulateInputGradients(dIn, input: cache.input, p)
        return (dx, dPrev)
    }
}
