import CKernels
import TensorCore

/// Long short-term memory cell (PyTorch `nn.LSTMCell`):
///
///     [i, f, g, o] = x·W_ihᵀ + b_ih + h·W_hhᵀ + b_hh        (B × 4H, gate blocks in this order)
///     i, f, o = σ(·),  g = tanh(·)
///     c' = f ⊙ c + i ⊙ g
///     h' = o ⊙ tanh(c')
///
/// Parameters `<prefix>.weight_ih<suffix>` (4H×in), `weight_hh` (4H×H), `bias_ih`, `bias_hh` (4H). The suffix
/// gives `nn.LSTM`'s per-layer names (`_l0`, `_l0_reverse`); a cell alone has none.
public struct LSTMCell: RecurrentCell {
    /// Input width `in` of each step.
    public let inputSize: Int
    /// Hidden and cell state width H.
    public let hiddenSize: Int
    /// Four gate blocks: i, f, g, o.
    public var gateCount: Int { 4 }
    /// An LSTM carries the cell state c besides h.
    public var hasCellState: Bool { true }
    /// 4H × in: `<prefix>.weight_ih<suffix>`, blocks i, f, g, o.
    public let weightIH: Param
    /// 4H × H: `<prefix>.weight_hh<suffix>`, blocks i, f, g, o.
    public let weightHH: Param
    /// 4H: `<prefix>.bias_ih<suffix>`, nil for `bias: false`.
    public let biasIH: Param?
    /// 4H: `<prefix>.bias_hh<suffix>`, nil for `bias: false`.
    public let biasHH: Param?

    /// Reserves the four parameters in `layout` under `<prefix>.<field><suffix>` (no prefix dot when `prefix` is empty).
    public init(_ prefix: String, inputSize: Int, hiddenSize: Int, bias: Bool = true, suffix: String = "",
                layout: inout ParameterLayout) {
        self.inputSize = inputSize
        self.hiddenSize = hiddenSize
        let name = { (field: String) in (prefix.isEmpty ? "" : prefix + ".") + field + suffix }
        weightIH = layout.add(name("weight_ih"), [4 * hiddenSize, inputSize])
        weightHH = layout.add(name("weight_hh"), [4 * hiddenSize, hiddenSize])
        biasIH = bias ? layout.add(name("bias_ih"), [4 * hiddenSize]) : nil
        biasHH = bias ? layout.add(name("bias_hh"), [4 * hiddenSize]) : nil
    }

    /// Activations of one step, all B-row tensors.
    public struct StepCache {
        /// B×4H: i, f, g, o after their nonlinearities.
        public let gates: Tensor
        /// B×H: the previous cell state c.
        public let previousCell: Tensor
        /// B×H: tanh(c').
        public let tanhCell: Tensor
    }

    /// `inputProjection` (B×4H), `state` h, c (B×H; nil c = 0) → h', c' (B×H) and the step's activations.
    public func step(inputProjection: Tensor, state: RecurrentState, _ p: Parameters) -> (RecurrentState, StepCache) {
        let b = state.h.shape[0], hs = hiddenSize
        precondition(inputProjection.shape == [b, 4 * hs] && state.h.shape == [b, hs])
        let cPrev = state.c ?? Tensor(shape: [b, hs])
        var gates = inputProjection
        var c = Tensor(shape: [b, hs]), tanhC = Tensor(shape: [b, hs]), h = Tensor(shape: [b, hs])
        gates.withUnsafeMutableBufferPointer { g in
            state.h.withUnsafeBufferPointer { projectHidden(rows: b, $0.baseAddress!, into: g.baseAddress!, accumulate: true, p) }
            cPrev.withUnsafeBufferPointer { cp in
                c.withUnsafeMutableBufferPointer { cb in
                    tanhC.withUnsafeMutableBufferPointer { tb in
                        h.withUnsafeMutableBufferPointer { hb in
                            LSTMCell.pointwiseForward(rows: b, hidden: hs, gates: g.baseAddress!, previousCell: cp.baseAddress!,
                                                      cell: cb.baseAddress!, tanhCell: tb.baseAddress!, hidden: hb.baseAddress!)
                        }
                    }
                }
            }
        }
        return (RecurrentState(h: h, c: c), StepCache(gates: gates, previousCell: cPrev, tanhCell: tanhC))
    }

    /// dL/dh', dL/dc' (B×H; nil or empty = 0) → dL/d(gate pre-activations) (B×4H, both projections alike) and dL/dh, dL/dc (B×H).
    public func stepBackward(_ dState: RecurrentState, _ cache: StepCache, _ p: Parameters)
        -> (dInputProjection: Tensor, dHiddenProjection: Tensor, dPrevious: RecurrentState) {
        let b = cache.previousCell.shape[0], hs = hiddenSize
        var dGates = Tensor(shape: [b, 4 * hs])
        var dcPrev = Tensor(shape: [b, hs]), dhPrev = Tensor(shape: [b, hs])
        withOptionalPointer(dState.h.count == 0 ? nil : dState.h) { dh in
            withOptionalPointer(dState.c) { dc in
                cache.gates.withUnsafeBufferPointer { g in
                    cache.previousCell.withUnsafeBufferPointer { cp in
                        cache.tanhCell.withUnsafeBufferPointer { tc in
                            dGates.withUnsafeMutableBufferPointer { dg in
                                dcPrev.withUnsafeMutableBufferPointer { dcp in
                                    LSTMCell.pointwiseBackward(
                                        rows: b, hidden: hs, gates: g.baseAddress!, previousCell: cp.baseAddress!,
                                        tanhCell: tc.baseAddress!, dHidden: dh, dCell: dc,
                                        dGates: dg.baseAddress!, dPreviousCell: dcp.baseAddress!)
                                }
                            }
                        }
                    }
                }
            }
        }
        // dh = dGates·W_hh   (B×4H · 4H×H)
        dGates.withUnsafeBufferPointer { dg in
            dhPrev.withUnsafeMutableBufferPointer { dh in
                sgemm(m: b, n: hs, k: 4 * hs, a: dg.baseAddress!, b: p.value(weightHH), c: dh.baseAddress!)
            }
        }
        return (dGates, dGates, RecurrentState(h: dhPrev, c: dcPrev))
    }

    // MARK: Raw pointwise kernels (shared with the attention decoder)

    /// The elementwise part of a step for `rows` rows (all buffers dense):
    /// `gates` (rows×4H) holds the pre-activations on entry and i, f, g, o on exit; writes c', tanh(c'), h'
    /// (rows×H each). `previousCell` nil means c = 0. Runs CKernels' vectorised kernel (libm's scalar expf and
    /// tanhf made this part cost as much as the step's matrix product).
    public static func pointwiseForward(rows: Int, hidden hs: Int, gates: UnsafeMutablePointer<Float>,
                                        previousCell: UnsafePointer<Float>?, cell: UnsafeMutablePointer<Float>,
                                        tanhCell: UnsafeMutablePointer<Float>, hidden: UnsafeMutablePointer<Float>) {
        ck_lstm_pointwise_forward(Int32(rows), Int32(hs), gates, previousCell, cell, tanhCell, hidden)
    }

    /// Backward of `pointwiseForward`: from dL/dh' and dL/dc' (either may be nil = 0) to dL/d(pre-activation
    /// gates) (rows×4H) and dL/dc (rows×H). `dPreviousCell` may alias `dCell` (updated in place).
    @inlinable
    public static func pointwiseBackward(rows: Int, hidden hs: Int, gates: UnsafePointer<Float>,
                                         previousCell: UnsafePointer<Float>?, tanhCell: UnsafePointer<Float>,
                                         dHidden: UnsafePointer<Float>?, dCell: UnsafePointer<Float>?,
                                         dGates: UnsafeMutablePointer<Float>, dPreviousCell: UnsafeMutablePointer<Float>) {
        for r in 0..<rows {
            let gi = gates + r * 4 * hs, gf = gi + hs, gg = gf + hs, go = gg + hs
            let di = dGates + r * 4 * hs, df = di + hs, dg = df + hs, dout = dg + hs
            let tc = tanhCell + r * hs, dcp = dPreviousCell + r * hs
            let cp = previousCell.map { $0 + r * hs }
            let dh = dHidden.map { $0 + r * hs }, dc = dCell.map { $0 + r * hs }
            for j in 0..<hs {
                let i = gi[j], f = gf[j], g = gg[j], o = go[j], t = tc[j]
                let dhj = dh?[j] ?? 0
                // dL/dc' collects the direct gradient and the path through h' = o·tanh(c').
                let dct = (dc?[j] ?? 0) + dhj * o * (1 - t * t)
                di[j] = dct * g * i * (1 - i)
                df[j] = dct * (cp?[j] ?? 0) * f * (1 - f)
                dg[j] = dct * i * (1 - g * g)
                dout[j] = dhj * t * o * (1 - o)
                dcp[j] = dct * f
            }
        }
    }
}

/// Calls `body` with the tensor's base address, or nil for a nil tensor.
func withOptionalPointer<R>(_ t: Tensor?, _ body: (UnsafePointer<Float>?) -> R) -> R {
    guard let t else { return body(nil) }
    return t.withUnsafeBufferPointer { body($0.baseAddress) }
}

/// Calls `body` with the tensor's mutable base address, or nil for a nil tensor.
func withOptionalMutablePointer<R>(_ t: inout Tensor?, _ body: (UnsafeMutablePointer<Float>?) -> R) -> R {
    guard t != nil else { return body(nil) }
    return t!.withUnsafeMutableBufferPointer { body($0.baseAddress) }
}
