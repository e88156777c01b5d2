import NN
import Vision
import TensorCore

/// Captions from annotation vectors: the decoder's per-image encoding, the per-step model and the beam search.
/// `Captioner` generates through it, and so does training's validation, with the weights being trained, so that
/// validation scores the captions inference would give.
public struct CaptionGenerator {
    /// The attention LSTM decoder.
    public let decoder: AttentionDecoder
    /// The decoder's weights.
    public let parameters: Parameters
    /// The word map.
    public let vocabulary: Vocabulary
    /// The annotation grid H'×W' (for the results' α maps); nil, or a grid of another size than L, gives 1×L.
    public let grid: GridSize?
    /// Half-precision copies of the step matrices (same results, half the bytes read per step).
    public let halfWeights: HalfStepWeights?
    /// Greedy decoding's half-precision argmax screen (same results).
    public let greedyScreen: ArgmaxScreen?

    /// A generator over `decoder`'s weights in `parameters`.
    public init(decoder: AttentionDecoder, parameters: Parameters, vocabulary: Vocabulary, grid: GridSize? = nil,
                halfWeights: HalfStepWeights? = nil, greedyScreen: ArgmaxScreen? = nil) {
        self.decoder = decoder
        self.parameters = parameters
        self.vocabulary = vocabulary
        self.grid = grid
        self.halfWeights = halfWeights
        self.greedyScreen = greedyScreen
    }

    /// Beam search (`beam` 1 = greedy) over N images' annotation vectors (N×L×D, or L×D for one), all images'
    /// beams stepped together; at most `maxLength` words. One result per image, in order.
    public func caption(annotations: Tensor, beam: Int, maxLength: Int, lengthPenalty: Float = 0) -> [CaptionResult] {
        let encoded = decoder.encode(annotations, parameters)
        let model = AttentionStepModel(decoder: decoder, parameters: parameters, images: encoded, half: halfWeights,
                                       screen: greedyScreen)
        let search = BeamSearch(beamSize: beam, maxLength: maxLength, lengthPenalty: lengthPenalty)
        let best = search.run(model, images: encoded.count, startToken: vocabulary.startIndex, endToken: vocabulary.endIndex)
        let g = grid.flatMap { $0.height * $0.width == encoded.pixels ? $0 : nil } ?? GridSize(height: 1, width: encoded.pixels)
        return best.map { h in
            let words = (h.finished ? h.tokens.dropLast() : h.tokens[...]).map { vocabulary.tokens[$0] }
            return CaptionResult(caption: words.joined(separator: " "), tokens: words, tokenIDs: h.tokens,
                                 tokenLogProbs: h.tokenLogProbs, logProb: h.logProb, alphas: h.alphas, grid: g,
                                 finished: h.finished)
        }
    }
}
