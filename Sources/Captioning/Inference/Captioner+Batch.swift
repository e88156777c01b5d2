import TensorCore
import CaptionSupport
import CaptionData

extension Captioner {
    /// The encoder and the beam search over N preprocessed inputs (3×S×S each, as `preprocessing.tensor` gives
    /// them), gathered into one N×3×S×S batch: one encoder pass, one search stepping all N·k beams together.
    public func caption(inputs: [Tensor], beam: Int = 3, maxLength: Int? = nil, lengthPenalty: Float = 0) -> [CaptionResult] {
        guard let first = inputs.first else { return [] }
        let one = first.count
        var batch = Tensor(shape: [inputs.count] + first.shape)
        batch.withUnsafeMutableBufferPointer { dst in
            for (i, t) in inputs.enumerated() {
                precondition(t.shape == first.shape, "caption(inputs:): input \(i) is \(t.shape), input 0 is \(first.shape)")
                t.withUnsafeBufferPointer { (dst.baseAddress! + i * one).update(from: $0.baseAddress!, count: one) }
            }
        }
        return caption(annotations: annotations(batch), beam: beam, maxLength: maxLength, lengthPenalty: lengthPenalty)
    }
}
