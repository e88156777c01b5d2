import NN
import TensorCore
import CaptionSupport
import CaptionData

extension AttentionDecoder {
    /// Teacher-forced log-probabilities of a token sequence for one encoded image: entry t is
    /// log p(tokens[t + 1] | tokens[0…t], image) = log_softmax(fc(h_{t+1}))[tokens[t + 1]] (natural log, dropout
    /// off), so `tokens` = `<start>` w_1 … w_n `<end>` gives n + 1 values. `image`: `encode` of one image.
    public func tokenLogProbabilities(_ tokens: [Int], image: EncodedImages, _ p: Parameters) -> [Float] {
        precondition(image.count == 1, "tokenLogProbabilities: one encoded image expected, got \(image.count)")
        var state = initState(image, p)
        var logProbs: [Float] = []
        logProbs.reserveCapacity(max(0, tokens.count - 1))
        for t in 0..<max(0, tokens.count - 1) {
            let out = decodingStep(tokens: [tokens[t]], state: state, images: image, imageOfRow: nil, p)
            state = out.state
            logProbs.append(out.logits.withUnsafeBufferPointer { x in
                x[tokens[t + 1]] - Kernels.logSumExp(x.count, x.baseAddress!)
            })
        }
        return logProbs
    }
}
