import CaptionSupport
import CaptionData

/// Reusable buffers of teacher-forced decoder passes: activations of every step of a batch and the gradients of
/// the backward pass, allocated on first use and grown when a larger batch comes, never per step.
///
/// One workspace serves one forward/backward at a time: a new `forward` overwrites the activations the previous
/// `DecoderForward` refers to (which `backward` checks). Use one workspace per concurrent training stream.
public final class DecoderWorkspace {
    enum Slot: Int, CaseIterable {
        // forward, in the decoder's sorted batch order
        case features, encAtt, mean, h0, c0, lstmInput, gates, hPrev, cPrev, cNext, tanhC, hOut
        case att2, alpha, context, gate, dropMask, hDrop, logits
        // backward
        case dLogits, dHout, dGates, dAtt2, dGatePre, dContext, dEncAtt, dFeatures, dh, dc, dhNew, dGated
        case dAlphaScratch, dWFullPartial, dBiasPartial, alphaSum, dEmbedding, dMean, gatherAlpha, gatherDContext
        case dAlphaRows
    }

    private var pointers: [UnsafeMutablePointer<Float>?]
    private var capacities: [Int]
    /// Incremented by every forward pass; a `DecoderForward` remembers the value it was made with.
    var generation = 0

    /// An empty workspace; each slot is allocated on first use.
    public init() {
        pointers = Array(repeating: nil, count: Slot.allCases.count)
        capacities = Array(repeating: 0, count: Slot.allCases.count)
    }

    deinit { release() }

    /// Buffer `slot` with room for at least `count` floats. Growing drops the old contents (callers always
    /// (re)write a buffer before reading it within one pass).
    func buffer(_ slot: Slot, _ count: Int) -> UnsafeMutablePointer<Float> {
        let i = slot.rawValue
        if capacities[i] < count || pointers[i] == nil {
            pointers[i]?.deallocate()
            let n = max(count, 1)
            let p = UnsafeMutablePointer<Float>.allocate(capacity: n)
            p.initialize(repeating: 0, count: n)
            pointers[i] = p
            capacities[i] = n
        }
        return pointers[i]!
    }

    /// Bytes currently held.
    public var bytes: Int { capacities.reduce(0, +) * MemoryLayout<Float>.stride }

    /// Frees every buffer (they are reallocated on next use).
    public func release() {
        for i in pointers.indices {
            pointers[i]?.deallocate()
            pointers[i] = nil
            capacities[i] = 0
        }
    }
}
