import TensorCore

/// Truncated backpropagation through time, TBPTT(k1, k2) in Williams & Peng's / Sutskever's notation:
/// every `k1` steps, backpropagate through the last `k2` steps (`k2 ≥ k1`).
///
/// Exact semantics, in processing order (reversed time for a reverse-direction layer) over T steps: the
/// sequence is cut into windows ending at e_j = min(j·k1, T), j = 1, 2, …; window j injects the output
/// gradients of steps [e_{j−1}, e_j) (and, for the last window, the final-state gradient), then runs the
/// backward recurrence from step e_j − 1 down to s_j = max(e_j − k2, 0). The state gradient leaving the window
/// at s_j is dropped (the state is treated as a constant, PyTorch's `detach()`), except that a window that
/// reaches step 0 contributes to the gradient of the initial state. Parameter and input gradients add up over
/// all windows. The forward values are those of the untruncated run.
///
/// `k1 == k2 == k` is the common "detach the state every k steps" training of long sequences; `k2 > k1`
/// lets each chunk's error flow a further k2 − k1 steps into the past, at k2/k1 times the backward cost.
public struct TruncatedBPTT: Equatable, Sendable {
    /// Steps between backward passes (how often the gradient is cut).
    public let k1: Int
    /// Steps each backward pass reaches into the past (≥ `k1`).
    public let k2: Int

    /// TBPTT(k1, k2); traps unless 1 ≤ k1 ≤ k2.
    public init(k1: Int, k2: Int) {
        precondition(k1 >= 1 && k2 >= k1, "TBPTT needs 1 ≤ k1 ≤ k2, got k1 = \(k1), k2 = \(k2)")
        self.k1 = k1
        self.k2 = k2
    }

    /// Detach every `k` steps: TBPTT(k, k).
    public init(every k: Int) { self.init(k1: k, k2: k) }
}

/// Everything `backwardSequence` needs from `forwardSequence`.
public struct SequenceCache<Cell: RecurrentCell> {
    /// T·B × in, time-major (as given).
    public let input: Tensor
    /// T·B × H: the hidden state fed into each step, in processing order.
    public let previousHidden: Tensor
    /// The cell's caches, in processing order.
    public let steps: [Cell.StepCache]
    /// T: the sequence length.
    public let timeSteps: Int
    /// B: sequences per batch.
    public let batch: Int
    /// Whether the steps ran from t = T−1 down to 0.
    public let reverse: Bool
}

extension RecurrentCell {
    /// Runs the cell over a time-major sequence `x` (T×B×in, PyTorch's `batch_first=False` layout).
    ///
    /// Returns `output` (T×B×H), where `output[t]` is the hidden state after consuming `x[t]`, the final state and
    /// the cache for `backwardSequence`. With `reverse`, the steps run from t = T−1 down to 0, so `output[t]` has
    /// seen `x[t...]` (the reverse half of a bidirectional layer). The input projection of all T steps is one SGEMM.
    public func forwardSequence(_ x: Tensor, initialState: RecurrentState? = nil, reverse: Bool = false,
                                _ p: Parameters) -> (output: Tensor, final: RecurrentState, cache: SequenceCache<Self>) {
        precondition(x.rank == 3 && x.shape[2] == inputSize, "\(Self.self): sequence \(x.shape), expected T×B×\(inputSize)")
        let (steps, batch, hs) = (x.shape[0], x.shape[1], hiddenSize)
        let flat = x.reshaped([steps * batch, inputSize])
        let projected = projectInput(flat, p)                   // T·B × G·H
        var state = initialState ?? zeroState(batch: batch)
        var output = Tensor(shape: [steps, batch, hs])
        var previousHidden = Tensor(shape: [steps * batch, hs])
        var caches: [StepCache] = []
        caches.reserveCapacity(steps)
        let rows = batch * gateRows
        for k in 0..<steps {
            let t = reverse ? steps - 1 - k : k
            copyRows(state.h, into: &previousHidden, at: k * batch * hs)
            let stepInput = Tensor(shape: [batch, gateRows], storage: Array(projected.storage[(t * rows)..<((t + 1) * rows)]))
            let (next, cache) = step(inputProjection: stepInput, state: state, p)
            copyRows(next.h, into: &output, at: t * batch * hs)
            caches.append(cache)
            state = next
        }
        return (output, state, SequenceCache(input: flat, previousHidden: previousHidden, steps: caches,
                                             timeSteps: steps, batch: batch, reverse: reverse))
    }

    /// Backpropagation through the sequence run by `forwardSequence`.
    ///
    /// `dOutput` (T×B×H, or nil for none) and `dFinal` (gradient of the final state, nil for none) are the
    /// upstream gradients. Accumulates all parameter gradients (the input-side and hidden-side weight gradients
    /// of all T steps as one SGEMM each) and returns dL/dx (T×B×in) and dL/d(initial state).
    /// `truncation` selects TBPTT(k1, k2) (see `TruncatedBPTT`); nil is full BPTT.
    public func backwardSequence(_ dOutput: Tensor?, dFinal: RecurrentState? = nil, _ cache: SequenceCache<Self>,
                                 truncation: TruncatedBPTT? = nil, _ p: Parameters)
        -> (dx: Tensor, dInitial: RecurrentState) {
        let (steps, batch, hs, g) = (cache.timeSteps, cache.batch, hiddenSize, gateRows)
        if let dOutput { precondition(dOutput.shape == [steps, batch, hs], "dOutput \(dOutput.shape)") }
        var dInputProjection = Tensor(shape: [steps * batch, g])   // time order, like the input
        var dHiddenProjection = Tensor(shape: [steps * batch, g])  // processing order, like previousHidden
        var dInitial = zeroState(batch: batch)

        // Windows [start, end) in processing order; full BPTT is one window over everything.
        let k1 = truncation?.k1 ?? max(steps, 1), k2 = truncation?.k2 ?? max(steps, 1)
        var windowEnd = min(k1, steps), windowOutputsFrom = 0
        while windowOutputsFrom < steps {
            let windowStart = max(windowEnd - k2, 0)
            var dState = (windowEnd == steps ? dFinal : nil) ?? zeroState(batch: batch)
            if dState.c == nil && hasCellState { dState.c = Tensor(shape: [batch, hs]) }
            for k in stride(from: windowEnd - 1, through: windowStart, by: -1) {
                let t = cache.reverse ? steps - 1 - k : k
                if let dOutput, k >= windowOutputsFrom { addRows(dOutput, from: t * batch * hs, into: &dState.h) }
                let (dIn, dHid, dPrev) = stepBackward(dState, cache.steps[k], p)
                addRows(dIn, into: &dInputProjection, at: t * batch * g)
                addRows(dHid, into: &dHiddenProjection, at: k * batch * g)
                dState = dPrev
            }
            if windowStart == 0 {
                addRows(dState.h, into: &dInitial.h, at: 0)
                if let c = dState.c, dInitial.c != nil { addRows(c, into: &dInitial.c!, at: 0) }
            }
            windowOutputsFrom = windowEnd
            windowEnd = min(windowEnd + k1, steps)
        }
        accumulateHiddenGradients(dHiddenProjection, previousHidden: cache.previousHidden, p)
        let dx = accumulateInputGradients(dInputProjection, input: cache.input, p)
        return (dx.reshaped([steps, batch, inputSize]), dInitial)
    }
}

/// `dst[offset ..< offset + src.count] = src`
func copyRows(_ src: Tensor, into dst: inout Tensor, at offset: Int) {
    src.withUnsafeBufferPointer { s in
        dst.withUnsafeMutableBufferPointer { d in
            (d.baseAddress! + offset).update(from: s.baseAddress!, count: s.count)
        }
    }
}

/// `dst[offset ..< offset + src.count] += src`
func addRows(_ src: Tensor, into dst: inout Tensor, at offset: Int) {
    src.withUnsafeBufferPointer { s in
        dst.withUnsafeMutableBufferPointer { d in
            Kernels.axpy(s.count, 1, s.baseAddress!, d.baseAddress! + offset)
        }
    }
}

/// `dst += src[offset ..< offset + dst.count]`
func addRows(_ src: Tensor, from offset: Int, into dst: inout Tensor) {
    src.withUnsafeBufferPointer { s in
        dst.withUnsafeMutableBufferPointer { d in
            Kernels.axpy(d.count, 1, s.baseAddress! + offset, d.baseAddress!)
        }
    }
}
