import Foundation
import Imaging
import NN
import TensorCore
import Vision
import CaptionSupport
import CaptionData

/// Image captioning for Swift programs: a model folder in, captions out.
///
/// ```swift
/// import Captioning
///
/// let captioner = try Captioner(modelFolder: Captioner.defaultModelFolder())   // or any model folder
/// let result = try captioner.caption(imagePath: "cat.jpg")            // beam 3
/// print(result.caption, result.logProb)                               // "a cat sitting on a couch" -4.2
/// let greedy = try captioner.caption(imagePath: "cat.jpg", beam: 1, maxLength: 20)
/// let s = try captioner.score(imagePath: "cat.jpg", caption: "A cat on a sofa.")
/// print(s.logProb, s.tokenLogProbs)                                   // natural log, <start> to <end>
/// ```
///
/// A model folder (scripts/convert_checkpoint.py writes one from a tutorial checkpoint) holds `config.json`
/// (`encoder`, `preprocess`: see Vision's `EncoderConfig`; `decoder`, `vocab`, `max_length`: see
/// `CaptionModelConfig`), the word map `vocab.json` and the encoder and decoder safetensors files.
///
/// Pipelines that decode and batch images themselves use the three stages separately:
///
/// ```swift
/// let input = captioner.preprocess(images)                 // N×3×S×S (resize, normalise)
/// let a = captioner.annotations(input)                     // N×L×D   (the CNN encoder)
/// let results = captioner.caption(annotations: a)          // N captions; all beams of all images step together
/// ```
///
/// Errors are `CaptionError`; each one's `description` is a single line `<file>: <problem>`, and its `kind`
/// tells a missing file from an unsupported, corrupt or too large one.
///
/// The captioner is immutable after loading (its weight buffers are only read), so one instance may be shared
/// by many threads and calls may overlap; each call also spreads its own work over `Threads.count` threads.
public final class Captioner: @unchecked Sendable {
    /// The model folder it was loaded from.
    public let folder: String
    /// Image decoding, preprocessing and the CNN encoder.
    public let extractor: FeatureExtractor
    /// The model's `config.json`.
    public let config: CaptionModelConfig
    /// The attention LSTM decoder (its weights are in `parameters`).
    public let decoder: AttentionDecoder
    /// The decoder's parameters.
    public let parameters: Parameters
    /// Half-precision copies of the decoder's step matrices, when they are exactly halves (an F16 model file):
    /// decoding then reads half the bytes per step, with the same results (see `HalfStepWeights`).
    public let halfWeights: HalfStepWeights?
    /// For float step matrices: greedy decoding picks its words reading fc in half precision, with the same
    /// results (see `ArgmaxScreen`).
    public let greedyScreen: ArgmaxScreen?
    /// The word map.
    public let vocabulary: Vocabulary
    /// The annotation grid H'×W' of a preprocessed image (L = H'·W').
    public let grid: GridSize

    /// The CNN encoder (inference weights only).
    public var encoder: Encoder { extractor.encoder }
    /// Resize and normalisation of the model's input.
    public var preprocessing: Preprocessing { extractor.preprocessing }

    /// The shipped model's folder: `$CAPTION_WEIGHTS` when set, else the `weights/` folder next to the running
    /// executable's package (as the command-line tool finds it).
    public static func defaultModelFolder() throws -> String { try WeightsLocation.resolve(nil) }

    /// Loads a model folder for inference, checking that its parts fit together: the vocabulary size against the
    /// decoder's, the encoder's feature size against the decoder's `encoder_dim`, every tensor's name and shape.
    /// Only the inference weights are kept (BatchNorm folded into the convolutions; see
    /// `Encoder.releaseTrainingWeights`): training loads its models through `CaptionTraining`.
    public init(modelFolder path: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw CaptionError(file: path, "no such model folder")
        }
        guard isDirectory.boolValue else { throw CaptionError(file: path, "not a model folder (expected a directory)") }
        let configPath = (path as NSString).appendingPathComponent("config.json")
        guard FileManager.default.fileExists(atPath: configPath) else {
            throw CaptionError(file: path, "not a model folder (no config.json)")
        }
        let (input, root) = try JSONInput.load(configPath)
        let config = try CaptionModelConfig(json: try input.object(root, "top level"), file: configPath)

        let vocabPath = (path as NSString).appendingPathComponent(config.vocabulary)
        let vocabulary = try Vocabulary.load(from: vocabPath)
        guard vocabulary.count == config.decoder.vocabSize else {
            throw CaptionError(file: vocabPath, "has \(vocabulary.count) entries but config.json's decoder.vocab_size is \(config.decoder.vocabSize)")
        }

        var layout = ParameterLayout()
        let decoder = AttentionDecoder(config: config.decoder, layout: &layout)
        let parameters = Parameters(layout)
        let decoderPath = (path as NSString).appendingPathComponent(config.decoderWeights)
        try decoder.load(from: SafeTensorsFile(path: decoderPath), into: parameters)

        let (encoder, encoderConfig) = try Encoder.load(path: path)
        encoder.releaseTrainingWeights()
        guard encoder.featureDimension == config.decoder.encoderDim else {
            throw CaptionError(file: configPath, "decoder.encoder_dim is \(config.decoder.encoderDim) but the encoder "
                            + "(\(encoder.architecture)) gives \(encoder.featureDimension)-d features")
        }
        let pre = encoderConfig.preprocessing
        let g = encoder.gridSize(height: pre.outputHeight, width: pre.outputWidth)

        self.folder = path
        self.extractor = FeatureExtractor(encoder: encoder, config: encoderConfig)
        self.config = config
        self.decoder = decoder
        self.parameters = parameters
        self.halfWeights = HalfStepWeights(decoder, parameters)
        self.greedyScreen = halfWeights == nil ? ArgmaxScreen(decoder, parameters) : nil
        self.vocabulary = vocabulary
        self.grid = GridSize(height: g.height, width: g.width)
    }

    // MARK: Captioning

    /// Decodes, encodes and captions one image file with beam search (`beam` 1 = greedy).
    /// `maxLength` (most words) defaults to the model's `max_length`; see `BeamSearch` for `lengthPenalty`.
    public func caption(imagePath: String, beam: Int = 3, maxLength: Int? = nil, lengthPenalty: Float = 0) throws -> CaptionResult {
        let image = try extractor.decoder.decode(path: imagePath)
        return caption(image: image, beam: beam, maxLength: maxLength, lengthPenalty: lengthPenalty)
    }

    /// Captions an already decoded image.
    public func caption(image: RGBImage, beam: Int = 3, maxLength: Int? = nil, lengthPenalty: Float = 0) -> CaptionResult {
        caption(annotations: annotations(preprocess([image])), beam: beam, maxLength: maxLength,
                lengthPenalty: lengthPenalty)[0]
    }

    /// The network inputs of decoded images, N×3×S×S (Pillow-exact resize, the model's mean/std).
    public func preprocess(_ images: [RGBImage]) -> Tensor { extractor.batch(images) }

    /// The encoder: N×3×S×S inputs → N×L×D annotation vectors.
    public func annotations(_ input: Tensor) -> Tensor { encoder.forward(images: input) }

    /// Beam search over the annotation vectors of N images (N×L×D, or L×D for one), all images' beams stepped
    /// together. Returns one result per image, in order.
    public func caption(annotations: Tensor, beam: Int = 3, maxLength: Int? = nil, lengthPenalty: Float = 0) -> [CaptionResult] {
        generator.caption(annotations: annotations, beam: beam, maxLength: maxLength ?? config.maxLength,
                          lengthPenalty: lengthPenalty)
    }

    /// The generation step on its own: decoder, weights, vocabulary and the half-precision step helpers.
    public var generator: CaptionGenerator {
        CaptionGenerator(decoder: decoder, parameters: parameters, vocabulary: vocabulary, grid: grid,
                         halfWeights: halfWeights, greedyScreen: greedyScreen)
    }

    // MARK: Scoring

    /// The teacher-forced log-probability of `caption` for the image file (see `score(annotations:caption:)`).
    public func score(imagePath: String, caption: String) throws -> CaptionScore {
        let image = try extractor.decoder.decode(path: imagePath)
        return score(annotations: annotations(preprocess([image])), caption: caption)
    }

    /// log p(w_1 … w_n `<end>` | `<start>`, image) under teacher forcing, natural log, per token and total.
    /// The caption is tokenised as in training (lower-cased, split on non-letters/digits); words missing from
    /// the vocabulary are scored as `<unk>` and listed in `unknownWords`. `annotations`: L×D or 1×L×D.
    public func score(annotations: Tensor, caption: String) -> CaptionScore {
        let words = CaptionTokenizer.words(caption)
        let ids = vocabulary.encode(words)
        let logProbs = decoder.tokenLogProbabilities(ids, image: decoder.encode(annotations, parameters), parameters)
        return CaptionScore(words: words, tokenIDs: Array(ids.dropFirst()), tokenLogProbs: logProbs,
                            logProb: logProbs.reduce(0, +), unknownWords: words.filter { !vocabulary.contains($0) })
    }
}
