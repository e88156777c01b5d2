import TensorCore
#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// Elman recurrent cell (PyTorch `nn.RNNCell`): `h' = act(x·W_ihᵀ + b_ih + h·W_hhᵀ + b_hh)`, act tanh or ReLU.
/// Parameters `<prefix>.weight_ih<suffix>` (H×in), `weight_hh` (H×H), `bias_ih`, `bias_hh` (H).
public struct RNNCell: RecurrentCell {
    public enum Nonlinearity: String, Codable, Sendable { case tanh, relu }

    public let inputSize: Int
    public let hiddenSize: Int
    public let nonlinearity: Nonlinearity
    public var gateCount: Int { 1 }
    public var hasCellState: Bool { false }
    public let weightIH: Param
    public let weightHH: Param
    public let biasIH: Param?
    public let biasHH: Param?

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
        public let hidden: Tensor
    }

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
