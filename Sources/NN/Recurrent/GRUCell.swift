import TensorCore
#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// Gated recurrent unit cell (PyTorch `nn.GRUCell`):
///
///     r = σ(W_ir x + b_ir + W_hr h + b_hr)
///     z = σ(W_iz x + b_iz + W_hz h + b_hz)
///     n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))      (the reset gate scales the *projected* h, as PyTorch)
///     h' = (1 − z) ⊙ n + z ⊙ h
///
/// Parameters `<prefix>.weight_ih<suffix>` (3H×in), `weight_hh` (3H×H), `bias_ih`, `bias_hh` (3H), blocks r, z, n.
public struct GRUCell: RecurrentCell {
    /// Input width `in` of each step.
    public let inputSize: Int
    /// Hidden state width H.
    public let hiddenSize: Int
    /// Three gate blocks: r, z, n.
    public var gateCount: Int { 3 }
    /// A GRU carries only h.
    public var hasCellState: Bool { false }
    /// 3H × in: `<prefix>.weight_ih<suffix>`, blocks r, z, n.
    public let weightIH: Param
    /// 3H × H: `<prefix>.weight_hh<suffix>`, blocks r, z, n.
    public let weightHH: Param
    /// 3H: `<prefix>.bias_ih<suffix>`, nil for `bias: false`.
    public let biasIH: Param?
    /// 3H: `<prefix>.bias_hh<suffix>`, nil for `bias: false`.
    public let biasHH: Param?

    /// Reserves the four parameters in `layout` under `<prefix>.<field><suffix>` (no prefix dot when `prefix` is empty).
    public init(_ prefix: String, inputSize: Int, hiddenSize: Int, bias: Bool = true, suffix: String = "",
                layout: inout ParameterLayout) {
        self.inputSize = inputSize
        self.hiddenSize = hiddenSize
        let name = { (field: String) in (prefix.isEmpty ? "" : prefix + ".") + field + suffix }
        weightIH = layout.add(name("weight_ih"), [3 * hiddenSize, inputSize])
        weightHH = layout.add(name("weight_hh"), [3 * hiddenSize, hiddenSize])
        biasIH = bias ? layout.add(name("bias_ih"), [3 * hiddenSize]) : nil
        biasHH = bias ? layout.add(name("bias_hh"), [3 * hiddenSize]) : nil
    }

    /// Activations of one step, all B-row tensors.
    public struct StepCache {
        /// B×3H: r, z, n after their nonlinearities.
        public let gates: Tensor
        /// B×H: W_hn h + b_hn (the part r scales).
        public let hiddenCandidate: Tensor
        /// B×H: the previous hidden state.
        public let previousHidden: Tensor
    }

    /// `inputProjection` (B×3H), `state.h` (B×H) → h' (B×H) and the step's activations.
    public func step(inputProjection: Tensor, state: RecurrentState, _ p: Parameters) -> (RecurrentState, StepCache) {
        let b = state.h.shape[0], hs = hiddenSize
        precondition(inputProjection.shape == [b, 3 * hs] && state.h.shape == [b, hs])
        var gates = inputProjection
        var hn = Tensor(shape: [b, hs]), h = Tensor(shape: [b, hs])
        var hp = Tensor(shape: [b, 3 * hs])  // h·W_hhᵀ + b_hh, kept apart because r scales its n block
        state.h.withUnsafeBufferPointer { hPrev in
            hp.withUnsafeMutableBufferPointer { hpb in
                projectHidden(rows: b, hPrev.baseAddress!, into: hpb.baseAddress!, accumulate: false, p)
                gates.withUnsafeMutableBufferPointer { g in
                    hn.withUnsafeMutableBufferPointer { hnb in
                        h.withUnsafeMutableBufferPointer { hb in
                            for r in 0..<b {
                                let x = g.baseAddress! + r * 3 * hs, hh = hpb.baseAddress! + r * 3 * hs
                                let hPrevRow = hPrev.baseAddress! + r * hs, hnRow = hnb.baseAddress! + r * hs
                                let out = hb.baseAddress! + r * hs
                                for j in 0..<hs {
                                    let rg = 1 / (1 + expf(-(x[j] + hh[j])))
                                    let zg = 1 / (1 + expf(-(x[hs + j] + hh[hs + j])))
                                    let n = tanhf(x[2 * hs + j] + rg * hh[2 * hs + j])
                                    x[j] = rg; x[hs + j] = zg; x[2 * hs + j] = n
                                    hnRow[j] = hh[2 * hs + j]
                                    out[j] = (1 - zg) * n + zg * hPrevRow[j]
                                }
                            }
                        }
                    }
                }
            }
        }
        return (RecurrentState(h: h), StepCache(gates: gates, hiddenCandidate: hn, previousHidden: state.h))
    }

    /// dL/dh' (B×H) → gradients wrt both projections (B×3H each; they differ in the n block) and dL/dh (B×H).
    public func stepBackward(_ dState: RecurrentState, _ cache: StepCache, _ p: Parameters)
        -> (dInputProjection: Tensor, dHiddenProjection: Tensor, dPrevious: RecurrentState) {
        let b = cache.previousHidden.shape[0], hs = hiddenSize
        var dIn = Tensor(shape: [b, 3 * hs]), dHid = Tensor(shape: [b, 3 * hs]), dhPrev = Tensor(shape: [b, hs])
        dState.h.withUnsafeBufferPointer { dhb in
            cache.gates.withUnsafeBufferPointer { g in
                cache.hiddenCandidate.withUnsafeBufferPointer { hnb in
                    cache.previousHidden.withUnsafeBufferPointer { hpb in
                        dIn.withUnsafeMutableBufferPointer { di in
                            dHid.withUnsafeMutableBufferPointer { dhh in
                                dhPrev.withUnsafeMutableBufferPointer { dhp in
                                    for row in 0..<b {
                                        let gr = g.baseAddress! + row * 3 * hs
                                        let hn = hnb.baseAddress! + row * hs, hPrev = hpb.baseAddress! + row * hs
                                        let dh = dhb.baseAddress! + row * hs, dhPrevRow = dhp.baseAddress! + row * hs
                                        let dx = di.baseAddress! + row * 3 * hs, dHh = dhh.baseAddress! + row * 3 * hs
                                        for j in 0..<hs {
                                            let r = gr[j], z = gr[hs + j], n = gr[2 * hs + j], d = dh[j]
                                            let dnPre = d * (1 - z) * (1 - n * n)
                                            let dzPre = d * (hPrev[j] - n) * z * (1 - z)
                                            let drPre = dnPre * hn[j] * r * (1 - r)
                                            dx[j] = drPre; dx[hs + j] = dzPre; dx[2 * hs + j] = dnPre
                                            dHh[j] = drPre; dHh[hs + j] = dzPre; dHh[2 * hs + j] = dnPre * r
                                            dhPrevRow[j] = d * z  // the direct path h' = … + z ⊙ h
                                        }
                                    }
                                    // dh += dHiddenProjection·W_hh   (B×3H · 3H×H)
                                    sgemm(m: b, n: hs, k: 3 * hs, a: dhh.baseAddress!, b: p.value(weightHH),
                                          beta: 1, c: dhp.baseAddress!)
                                }
                            }
                        }
                    }
                }
            }
        }
        return (dIn, dHid, RecurrentState(h: dhPrev))
    }
}
