import NN
import TensorCore
import CaptionSupport
import CaptionData

/// IEEE half-precision copies of the five matrices every decoding step reads — `attention.decoder_att`,
/// `f_beta`, `decode_step.weight_hh`, `decode_step.weight_ih` and `fc` (for the tutorial's sizes 48 MB in
/// float, 24 MB in half) — for a decoder whose weights are exactly representable in half precision, as when its
/// `decoder.safetensors` stores them as F16 (`scripts/convert_checkpoint.py --dtype f16`).
///
/// Greedy and small-beam decoding of one image is bound by reading those weights once per step; in half they
/// take half the memory traffic and are more likely to fit in the last-level cache. The step kernel widens each half to float as it
/// reads it (F16C), so logits are the same as from the float copies: same values, same sums in the same order.
/// Only built when every value converts back exactly, so it never changes a result.
public final class HalfStepWeights: @unchecked Sendable {
    /// Half copies keyed by the parameter's offset in `Parameters`.
    private var pointers: [Int: UnsafeMutablePointer<UInt16>] = [:]

    /// The half copies of `decoder`'s step matrices in `p`, or nil when some value is not exactly a half.
    public init?(_ decoder: AttentionDecoder, _ p: Parameters) {
        for param in decoder.stepMatrices {
            let src = p.value(param), n = param.count
            let dst = UnsafeMutablePointer<UInt16>.allocate(capacity: n)
            pointers[param.offset] = dst
            bytes += n * MemoryLayout<UInt16>.stride
            for i in 0..<n {
                let h = Half.bits(src[i])
                guard Half.toFloat(h) == src[i] else { return nil }
                dst[i] = h
            }
        }
    }

    deinit { for p in pointers.values { p.deallocate() } }

    /// The half copy of `param` (nil when it is not a step matrix).
    func weights(_ param: Param) -> UnsafePointer<UInt16>? { pointers[param.offset].map { UnsafePointer($0) } }

    /// Bytes held.
    public private(set) var bytes = 0
}

extension AttentionDecoder {
    /// The matrices a decoding step streams through: decoder_att, f_beta, W_hh, W_ih, fc.
    var stepMatrices: [Param] { [decoderAtt.weight, fBeta.weight, decodeStep.weightHH, decodeStep.weightIH, fc.weight] }

    /// Rounds the step matrices of `p` to half precision in place (nearest, ties to even — torch's `.half()`),
    /// so `HalfStepWeights(self, p)` exists; for benchmarks and tests of the half path.
    public func roundStepMatricesToHalf(_ p: Parameters) {
        for param in stepMatrices { Half.round(p.value(param), count: param.count) }
    }
}
