import Foundation
import Imaging
import NN
import TensorCore
import Vision
import CaptionSupport
import CaptionData
import CaptionMetrics
import SyntheticWorld
import Captioning

/// The shape of a new model: its encoder, input size and decoder sizes. (A model loaded from a folder or a
/// checkpoint brings its own.)
public struct ModelSpec: Equatable, Sendable {
    /// The CNN; the default is the compact net of the shipped model.
    public var architecture: Architecture = .compact(CompactNetSpec())
    /// Images are resized (Pillow-exact bilinear) to size × size.
    public var imageSize = 96
    /// Adaptive average pool of the CNN's map to this grid (nil: the CNN's own grid).
    public var pool: GridSize?
    /// Per-channel RGB mean subtracted after scaling pixels to 0…1 (ImageNet's by default).
    public var mean: [Float] = Preprocessing.imageNetMean
    /// Per-channel RGB standard deviation divided by after the mean (ImageNet's by default).
    public var std: [Float] = Preprocessing.imageNetStd
    /// A: width of the attention MLP.
    public var attentionDim = 512
    /// E: word embedding size.
    public var embedDim = 512
    /// H: LSTM hidden size.
    public var decoderDim = 512
    /// Dropout probability before the decoder's `fc`, in training.
    public var dropout: Float = 0.5
    /// Nonlinearity of the attention MLP: the tutorial's ReLU or the paper's tanh.
    public var attention: AttentionDecoderConfig.AttentionActivation = .relu
    /// Context gate: per channel (the tutorial) or one scalar β (the paper).
    public var gate: AttentionDecoderConfig.Gate = .perChannel
    /// The model's default caption length limit (`max_length` in config.json).
    public var maxLength = 50

    /// The defaults above: the compact CNN on 96×96 images with a 512-wide decoder.
    public init() {}
}

/// A captioning model being trained: CNN encoder, attention decoder and vocabulary, each with its own flat
/// parameter buffer (so the encoder can have its own learning rate or stay frozen), and the model folder it becomes
/// (`config.json`, `vocab.json`, `encoder.safetensors`, `decoder.safetensors`; what `Captioner` loads).
public final class TrainableModel {
    /// The CNN, with its own parameters, giving the annotation vectors a (L×D per image).
    public let encoder: Encoder
    /// The CNN's architecture, parameter naming, pooling and preprocessing, as written to `config.json`.
    public let encoderConfig: EncoderConfig
    /// The attention LSTM decoder over the encoder's D channels and the vocabulary's V words.
    public let decoder: AttentionDecoder
    /// The decoder's flat parameter buffer (written to `decoder.safetensors`).
    public let decoderParameters: Parameters
    /// The word map (written to `vocab.json`); its size is the decoder's V.
    public let vocabulary: Vocabulary
    /// The captioning part of `config.json`: decoder sizes, file names and the default caption length limit.
    public let config: CaptionModelConfig

    init(encoder: Encoder, encoderConfig: EncoderConfig, decoder: AttentionDecoder, decoderParameters: Parameters,
         vocabulary: Vocabulary, config: CaptionModelConfig) {
        self.encoder = encoder
        self.encoderConfig = encoderConfig
        self.decoder = decoder
        self.decoderParameters = decoderParameters
        self.vocabulary = vocabulary
        self.config = config
    }

    /// A new model with seeded initial weights: torchvision's initialisation for the CNN, the tutorial's for the
    /// decoder. With `encoderPath` (a model folder or a torchvision safetensors file) the CNN and its
    /// preprocessing come from there instead of `spec`.
    public convenience init(spec: ModelSpec, vocabulary: Vocabulary, seed: UInt64, encoderPath: String? = nil) throws {
        let encoder: Encoder, encoderConfig: EncoderConfig
        var rng = RNG(seed: mix64(seed ^ 0x494E_4954))  // "INIT"
        if let encoderPath {
            do { (encoder, encoderConfig) = try Encoder.load(path: encoderPath) } catch { throw CaptionError.wrapping(error, file: encoderPath) }
        } else {
            let pre = Preprocessing(resizeWidth: spec.imageSize, resizeHeight: spec.imageSize, mean: spec.mean, std: spec.std)
            encoderConfig = EncoderConfig(architecture: spec.architecture, naming: .torchvision, pool: spec.pool,
                                          preprocessing: pre)
            encoder = Encoder(config: encoderConfig)
            let grid = encoder.featureMapSize(height: spec.imageSize, width: spec.imageSize)
            guard grid.height > 0 else {
                throw CaptionError.usage("--image-size \(spec.imageSize) is too small for \(spec.architecture)")
            }
            encoder.initialize(rng: &rng)
        }
        let decoderConfig = AttentionDecoderConfig(
            encoderDim: encoder.featureDimension, attentionDim: spec.attentionDim, embedDim: spec.embedDim,
            decoderDim: spec.decoderDim, vocabSize: vocabulary.count, dropout: spec.dropout,
            attentionActivation: spec.attention, gate: spec.gate)
        var layout = ParameterLayout()
        let decoder = AttentionDecoder(config: decoderConfig, layout: &layout)
        let parameters = Parameters(layout)
        decoder.initialize(parameters, rng: &rng)
        self.init(encoder: encoder, encoderConfig: encoderConfig, decoder: decoder, decoderParameters: parameters,
                  vocabulary: vocabulary, config: CaptionModelConfig(decoder: decoderConfig, maxLength: spec.maxLength))
    }

    /// An existing model folder, to fine-tune (its vocabulary is kept).
    public static func load(folder: String) throws -> TrainableModel {
        let configPath = (folder as NSString).appendingPathComponent("config.json")
        let (input, root) = try JSONInput.load(configPath)
        let object = try input.object(root, "top level")
        let config = try CaptionModelConfig(json: object, file: configPath)
        let vocabulary = try Vocabulary.load(from: (folder as NSString).appendingPathComponent(config.vocabulary))
        guard vocabulary.count == config.decoder.vocabSize else {
            throw CaptionError(file: configPath, "decoder.vocab_size is \(config.decoder.vocabSize) but \(config.vocabulary) has \(vocabulary.count) entries")
        }
        let encoder: Encoder, encoderConfig: EncoderConfig
        do { (encoder, encoderConfig) = try Encoder.load(path: folder) } catch { throw CaptionError.wrapping(error, file: folder) }
        guard encoder.featureDimension == config.decoder.encoderDim else {
            throw CaptionError(file: configPath, "decoder.encoder_dim is \(config.decoder.encoderDim) but the encoder gives \(encoder.featureDimension)")
        }
        var layout = ParameterLayout()
        let decoder = AttentionDecoder(config: config.decoder, layout: &layout)
        let parameters = Parameters(layout)
        do {
            try decoder.load(from: SafeTensorsFile(path: (folder as NSString).appendingPathComponent(config.decoderWeights)),
                             into: parameters)
        } catch { throw CaptionError.wrapping(error, file: folder) }
        return TrainableModel(encoder: encoder, encoderConfig: encoderConfig, decoder: decoder,
                              decoderParameters: parameters, vocabulary: vocabulary, config: config)
    }

    /// Rebuilds a model from a `config.json` object and vocabulary (a checkpoint's); weights are loaded separately.
    static func rebuild(configJSON: [String: Any], vocabulary: Vocabulary, file: String) throws -> TrainableModel {
        let config = try CaptionModelConfig(json: configJSON, file: file)
        let encoderConfig: EncoderConfig
        do { encoderConfig = try EncoderConfig(json: configJSON, file: file) } catch { throw CaptionError.wrapping(error, file: file) }
        let encoder = Encoder(config: encoderConfig)
        var layout = ParameterLayout()
        let decoder = AttentionDecoder(config: config.decoder, layout: &layout)
        guard vocabulary.count == config.decoder.vocabSize, encoder.featureDimension == config.decoder.encoderDim else {
            throw CaptionError(file: file, "the stored model's vocabulary or encoder does not match its decoder")
        }
        return TrainableModel(encoder: encoder, encoderConfig: encoderConfig, decoder: decoder,
                              decoderParameters: Parameters(layout), vocabulary: vocabulary, config: config)
    }

    /// The annotation grid of a preprocessed image (L = height · width).
    public var grid: GridSize {
        let p = encoderConfig.preprocessing
        let g = encoder.gridSize(height: p.outputHeight, width: p.outputWidth)
        return GridSize(height: g.height, width: g.width)
    }

    // MARK: Model folder

    /// The `config.json` object: `encoder` and `preprocess` (Vision's `EncoderConfig` format, tensor names
    /// torchvision's) and the decoder's entries.
    public var configJSON: [String: Any] {
        let c = encoderConfig
        var enc: [String: Any] = ["arch": c.architecture.name, "weights": "encoder.safetensors", "naming": "torchvision"]
        switch c.architecture {
        case .resnet(_, let w), .vgg(_, _, let w): if w != 64 { enc["width"] = w }
        case .compact(let s): enc["channels"] = s.channels; enc["strides"] = s.strides
        }
        enc["pool"] = c.pool.map { [$0.height, $0.width] as Any } ?? NSNull()
        let p = c.preprocessing
        let pre: [String: Any] = [
            "size": p.resizeWidth, "resize": "bilinear", "center_crop": p.cropWidth.map { $0 as Any } ?? NSNull(),
            "mean": p.mean.map(Double.init), "std": p.std.map(Double.init),
        ]
        var root = config.jsonEntries
        root["encoder"] = enc
        root["preprocess"] = pre
        return root
    }

    /// Writes the model folder: tensors first, `config.json` last, each file atomically (a reader sees old or new
    /// files, never a partial one).
    public func write(to folder: String, metadata: [String: String] = [:]) throws {
        let fm = FileManager.default
        do { try fm.createDirectory(atPath: folder, withIntermediateDirectories: true) } catch {
            throw CaptionError(file: folder, "cannot create folder: \(error.localizedDescription)")
        }
        func path(_ name: String) -> String { (folder as NSString).appendingPathComponent(name) }
        do {
            try encoder.save(to: path("encoder.safetensors"), metadata: metadata)
            try decoder.save(decoderParameters, to: path(config.decoderWeights), metadata: metadata)
        } catch { throw CaptionError.wrapping(error, file: folder) }
        try vocabulary.save(to: path(config.vocabulary))
        try TrainableModel.writeJSON(configJSON, to: path("config.json"))
    }

    /// Pretty, key-sorted JSON written atomically.
    static func writeJSON(_ object: Any, to path: String) throws {
        do {
            let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
            try (data + Data("\n".utf8)).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw CaptionError(file: path, "cannot write: \(error.localizedDescription)")
        }
    }
}
