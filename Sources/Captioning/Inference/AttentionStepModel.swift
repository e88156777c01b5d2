import NN
import TensorCore
import CaptionSupport
import CaptionData

/// The attention decoder as a `CaptionStepModel`: n encoded images, any number of rows (beams) per image.
///
/// Rows never copy their image: each row only records which image it attends over (`imageOfRow`), and every
/// step reads that image's annotations a (L×D) and projection encoder_att(a) (L×A, computed once by `encode`).
/// A step (`decodingStep`) runs decoder_att, f_beta, the LSTM and fc as one matrix product each over all live rows of
/// all images.
public struct AttentionStepModel: CaptionStepModel {
    /// The decoder whose step this runs.
    public let decoder: AttentionDecoder
    /// The decoder's weights.
    public let parameters: Parameters
    /// The n images' annotations a (n×L×D) and encoder_att(a) (n×L×A).
    public let images: EncodedImages
    /// Half-precision copies of the step matrices (same values), read instead of the float ones when given.
    public let half: HalfStepWeights?
    /// Greedy decoding picks each word through this screen (half the bytes of fc per step, the same words) and
    /// computes the logits of all steps together at the end; without it greedy runs the general search.
    public let screen: ArgmaxScreen?

    /// The LSTM state of every row and the image each row belongs to.
    public struct State {
        /// h, c of every row (rows×H each).
        public var decoder: DecoderState
        /// For every row, the index of the image (0..<n) it attends over.
        public var imageOfRow: [Int]
    }

    /// `images`: `decoder.encode(features)` of n images.
    public init(decoder: AttentionDecoder, parameters: Parameters, images: EncodedImages, half: HalfStepWeights? = nil,
                screen: ArgmaxScreen? = nil) {
        self.decoder = decoder
        self.parameters = parameters
        self.images = images
        self.half = half
        self.screen = screen
    }

    /// V, the decoder's vocabulary size.
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

    /// The listed rows' LSTM states and images, in that order (repeats allowed): no image data is copied.
    public func select(rows: [Int], from state: State) -> State {
        State(decoder: state.decoder.selecting(rows), imageOfRow: rows.map { state.imageOfRow[$0] })
    }
}

extension AttentionStepModel: GreedyStepModel {
    /// With a screen, for steps of at most `RowGEMM.maxRows` rows: those whose `step` computes its logits row by
    /// row with `RowGEMM`'s kernel, as the screen does for its candidates (more rows go to SGEMM, which reads fc
    /// once for all of them anyway).
    public func supportsGreedySteps(rows: Int) -> Bool { screen != nil && rows <= RowGEMM.maxRows }

    /// The step without fc; the words from the screen; the outputs are h' (rows×H).
    public func greedyStep(tokens: [Int], state: inout State) -> (words: [Int], alphas: Tensor, outputs: Tensor) {
        let (alpha, next) = decoder.decodingAdvance(tokens: tokens, state: state.decoder, images: images,
                                                    imageOfRow: state.imageOfRow, parameters, half: half)
        state.decoder = next
        let words = next.h.withUnsafeBufferPointer {
            screen!.argmax(rows: tokens.count, $0.baseAddress!, fc: decoder.fc, parameters).words
        }
        return (words, alpha, next.h)
    }

    /// fc over the h' of all steps at once, by SGEMM: fc is read once per search rather than once per step, and
    /// the product runs at SGEMM speed. (The values can differ from a step's own `RowGEMM` logits in the last
    /// bits, as logits computed by any other summation order would.)
    public func scores(outputs: [Tensor]) -> [Tensor] {
        let fc = decoder.fc, p = parameters
        let (nH, nV) = (fc.inFeatures, fc.outFeatures), rows = outputs.reduce(0) { $0 + $1.shape[0] }
        var stacked = Tensor(shape: [rows, nH]), logits = Tensor(shape: [rows, nV])
        stacked.withUnsafeMutableBufferPointer { dst in
            var at = 0
            for t in outputs {
                t.withUnsafeBufferPointer { (dst.baseAddress! + at).update(from: $0.baseAddress!, count: $0.count) }
                at += t.count
            }
            logits.withUnsafeMutableBufferPointer { lb in Threads.withTeamGEMM {
                RowGEMM.bySGEMM(m: rows, n: nV, k: nH, x: dst.baseAddress!, ldx: nH, w: p.value(fc.weight),
                                bias: fc.bias.map { UnsafePointer(p.value($0)) }, y: lb.baseAddress!, ldy: nV)
            } }
        }
        var result: [Tensor] = [], at = 0
        logits.withUnsafeBufferPointer { src in
            for t in outputs {
                let n = t.shape[0] * nV
                result.append(Tensor(shape: [t.shape[0], nV], unsafeUninitialized: {
                    $0.baseAddress!.update(from: src.baseAddress! + at, count: n)
                }))
                at += n
            }
        }
        return result
    }
}

