import TensorCore
#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// Elman recurrent cell (PyTorch `nn.RNNCell`): `h' = act(x·W_ihᵀ + b_ih + h·W_hhᵀ + b_hh)`, act tanh or ReLU.
/// Parameters `<prefix>.weight_ih<suffix>` (H×in), `weight_hh` (H×H), `bias_ih`, `bias_hh` (H).
public struct RNNCell: RecurrentCell {
    /// The activation applied to the summed projections: `tanh` (PyTorch's default) or `relu` (max(·, 0)).
    public enum Nonlinearity: String, Codable, Sendable { case tanh, relu }

    /// Input width `in` of each step.
    public let inputSize: Int
    /// Hidden state width H.
    public let hiddenSize: Int
    /// The activation `act` in `h' = act(…)`.
    public let nonlinearity: Nonlinearity
    /// One block: the pre-activation itself.
    public var gateCount: Int { 1 }
    /// An Elman cell carries only h.
    public var hasCellState: Bool { false }
    /// H × in: `<prefix>.weight_ih<suffix>`.
    public let weightIH: Param
    /// H × H: `<prefix>.weight_hh<suffix>`.
    public let weightHH: Param
    /// H: `<prefix>.bias_ih<suffix>`, nil for `bias: false`.
    public let biasIH: Param?
    /// H: `<prefix>.bias_hh<suffix>`, nil for `bias: false`.
    public let biasHH: Param?

    /// Reserves the four parameters in `layout` under `<prefix>.<field><suffix>` (no prefix dot when `prefix` is empty).
    public init(_ prefix: String, inputSize: Int, hiddenSize: Int, nonlinearity: Nonlinearity = .tanh,
                bias: Bool = true, suffix: String = "", layout: inout ParameterLayout) {
        self.inputSize = inputSize
        self.hiddenSize = hiddenSize
        self.nonlinearity = nonlinearity
        let name = { (field: String) in (prefix.isEmpty ? "" : prefix + ".") + field + suffix }
        weightIH = layout.add(name("weight_ih"), [hiddenSize, inputSize])
        weightHH = layout.add(name("weight_hh"), [hiddenSize, hiddenSize])
        biasIH = bias ? layout.add(name("bias_ih"), [hiddenSize]) : nil
        biasHH = bias ? layout.add(name("bias_hh"), [hiddenSize]) : nil
    }

    /// The new hidden state h' (B×H): both derivatives are functions of the output.
    public struct StepCache {
        /// B×H: h' after the activation.
        public let hidden: Tensor
    }

    /// `inputProjection` (B×H), `state.h` (B×H) → h' (B×H); the cache is h' itself.
    public func step(inputProjection: Tensor, state: RecurrentState, _ p: Parameters) -> (RecurrentState, StepCache) {
        let b = state.h.shape[0]
        precondition(inputProjection.shape == [b, hiddenSize] && state.h.shape == [b, hiddenSize])
        var h = inputProjection
        h.withUnsafeMutableBufferPointer { hb in
            state.h.withUnsafeBufferPointer { projectHidden(rows: b, $0.baseAddress!, into: hb.baseAddress!, accumulate: true, p) }
            let x = hb.baseAddress!
            switch nonlinearity {
            case .tanh: for i in 0..<hb.count { x[i] = tanhf(x[i]) }
            case .relu: for i in 0..<hb.count { x[i] = max(x[i], 0) }
            }
        }
        return (RecurrentState(h: h), StepCache(hidden: h))
    }

    /// dL/dh' (B×H) → dL/d(pre-activation) (B×H, both projections alike) and dL/dh (B×H).
    public func stepBackward(_ dState: RecurrentState, _ cache: StepCache, _ p: Parameters)
        -> (dInputProjection: Tensor, dHiddenProjection: Tensor, dPrevious: RecurrentState) {
        let b = cache.hidden.shape[0], hs = hiddenSize
        var dPre = Tensor(shape: [b, hs]), dhPrev = Tensor(shape: [b, hs])
        cache.hidden.withUnsafeBufferPointer { hb in
            dState.h.withUnsafeBufferPointer { dh in
                dPre.withUnsafeMutableBufferPointer { d in
                    let h = hb.baseAddress!, g = dh.baseAddress!, out = d.baseAddress!
                    switch nonlinearity {
                    case .tanh: for i in 0..<d.count { out[i] = g[i] * (1 - h[i] * h[i]) }
                    case .relu: Kernels.reluBackward(d.count, h, g, out)
                    }
                }
            }
        }
        // dh = dPre·W_hh   (B×H · H×H)
        dPre.withUnsafeBufferPointer { d in
            dhPrev.withUnsafeMutableBufferPointer { sgemm(m: b, n: hs, k: hs, a: d.baseAddress!, b: p.value(weightHH), c: $0.baseAddress!) }
        }
        return (dPre, dPre, RecurrentState(h: dhPrev))
    }
}
