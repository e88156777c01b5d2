import NN
import TensorCore

/// The attention decoder as a `CaptionStepModel`: n encoded images, any number of rows (beams) per image.
///
/// Rows never copy their image: each row only records which image it attends over (`imageOfRow`), and every
/// step reads that image's annotations a (L×D) and projection encoder_att(a) (L×A, computed once by `encode`).
/// A step (`decodingStep`) runs decoder_att, f_beta, the LSTM and fc as one matrix product each over all live rows of
/// all images.
public struct AttentionStepModel: CaptionStepModel {
    public let decoder: AttentionDecoder
    public let parameters: Parameters
    public let images: EncodedImages
    /// Half-precision copies of the step matrices (same values), read instead of the float ones when given.
    public let half: HalfStepWeights?

    /// The LSTM state of every row and the image each row belongs to.
    public struct State {
        public var decoder: DecoderState
        public var imageOfRow: [Int]
    }

    /// `images`: `decoder.encode(features)` of n images.
    public init(decoder: AttentionDecoder, parameters: Parameters, images: EncodedImages, half: HalfStepWeights? = nil) {
        self.decoder = decoder
        self.parameters = parameters
        self.images = images
        self.half = half
    }

    public var vocabularySize: Int { decoder.config.vocabSize }

    /// h_0, c_0 of each image (one row per image).
    public func initialState() -> State {
        State(decoder: decoder.initState(images, parameters), imageOfRow: Array(0..<images.count))
    }

    /// rows×V logits and rows×L α.
    public func step(tokens: [Int], state: inout State) -> (scores: Tensor, alphas: Tensor) {
        let out = decoder.decodingStep(tokens: tokens, state: state.decoder, images: images, imageOfRow: state.imageOfRow,
                                       parameters, half: half)
        state.decoder = out.state
        return (out.logits, out.alpha)
    }

    public func select(rows: [Int], from state: State) -> State {
        State(decoder: state.decoder.selecting(rows), imageOfRow: rows.map { state.imageOfRow[$0] })
    }
}
