import Foundation
import CaptionSupport
import CaptionData

/// The captioning half of a model folder's `config.json` (as scripts/convert_checkpoint.py writes it; the
/// `encoder` and `preprocess` sections are Vision's `EncoderConfig`):
///
/// ```json
/// "decoder": {"type": "attention-lstm", "weights": "decoder.safetensors", "encoder_dim": 2048,
///             "attention_dim": 512, "embed_dim": 512, "decoder_dim": 512, "vocab_size": 9490,
///             "dropout": 0.5, "attention": "relu", "gate": "vector"},
/// "vocab": "vocab.json",
/// "max_length": 50
/// ```
///
/// `attention` is `relu` (the tutorial) or `tanh` (the paper); `gate` is `vector` (the tutorial's per-channel
/// σ(f_beta(h))) or `scalar` (the paper's β). `type`, `weights`, `dropout`, `attention`, `gate`, `vocab` and
/// `max_length` may be omitted (the defaults shown above).
public struct CaptionModelConfig: Equatable, Sendable {
    /// Sizes and variant of the attention decoder (the `decoder` object).
    public var decoder: AttentionDecoderConfig
    /// Decoder weights file, relative to the model folder.
    public var decoderWeights: String
    /// Word map file, relative to the model folder.
    public var vocabulary: String
    /// Default most words per caption.
    public var maxLength: Int

    /// A configuration from its parts; the defaults are those `config.json` may omit.
    public init(decoder: AttentionDecoderConfig, decoderWeights: String = "decoder.safetensors",
                vocabulary: String = "vocab.json", maxLength: Int = 50) {
        self.decoder = decoder
        self.decoderWeights = decoderWeights
        self.vocabulary = vocabulary
        self.maxLength = maxLength
    }

    /// Reads the `decoder`, `vocab` and `max_length` entries of a parsed `config.json`; `file` names it in errors.
    public init(json root: [String: Any], file: String) throws {
        let input = JSONInput(file: file)
        guard root["decoder"] != nil else {
            throw input.error("no \"decoder\" object (an encoder-only model folder cannot caption)")
        }
        let dec = try input.object(root["decoder"], "decoder")
        func positive(_ key: String) throws -> Int {
            let n = try input.int(dec[key], "decoder.\(key)")
            guard n > 0 else { throw input.error("decoder.\(key): expected a positive integer, found \(n)") }
            return n
        }
        func optionalString(_ value: Any?, _ path: String, default d: String) throws -> String {
            guard let value, !(value is NSNull) else { return d }
            return try input.string(value, path)
        }
        let type = try optionalString(dec["type"], "decoder.type", default: "attention-lstm")
        guard type == "attention-lstm" else {
            throw input.error("decoder.type: unknown decoder \"\(type)\" (expected \"attention-lstm\")")
        }
        let activationName = try optionalString(dec["attention"], "decoder.attention", default: "relu")
        guard let activation = AttentionDecoderConfig.AttentionActivation(rawValue: activationName) else {
            throw input.error("decoder.attention: expected \"relu\" or \"tanh\", found \"\(activationName)\"")
        }
        let gateName = try optionalString(dec["gate"], "decoder.gate", default: "vector")
        let gate: AttentionDecoderConfig.Gate
        switch gateName {
        case "vector": gate = .perChannel
        case "scalar": gate = .scalar
        default: throw input.error("decoder.gate: expected \"vector\" or \"scalar\", found \"\(gateName)\"")
        }
        var dropout: Float = 0.5
        if let d = dec["dropout"], !(d is NSNull) {
            let v = try input.double(d, "decoder.dropout")
            guard v >= 0 && v < 1 else { throw input.error("decoder.dropout: expected a number in [0, 1), found \(v)") }
            dropout = Float(v)
        }
        decoder = AttentionDecoderConfig(
            encoderDim: try positive("encoder_dim"), attentionDim: try positive("attention_dim"),
            embedDim: try positive("embed_dim"), decoderDim: try positive("decoder_dim"),
            vocabSize: try positive("vocab_size"), dropout: dropout, attentionActivation: activation, gate: gate)
        decoderWeights = try optionalString(dec["weights"], "decoder.weights", default: "decoder.safetensors")
        vocabulary = try optionalString(root["vocab"], "vocab", default: "vocab.json")
        maxLength = 50
        if let m = root["max_length"], !(m is NSNull) {
            maxLength = try input.int(m, "max_length")
            guard maxLength > 0 else { throw input.error("max_length: expected a positive integer, found \(maxLength)") }
        }
    }

    /// The entries this config owns, ready to merge into a `config.json` object (for model writers).
    public var jsonEntries: [String: Any] {
        let d = decoder
        return [
            "decoder": [
                "type": "attention-lstm", "weights": decoderWeights,
                "encoder_dim": d.encoderDim, "attention_dim": d.attentionDim, "embed_dim": d.embedDim,
                "decoder_dim": d.decoderDim, "vocab_size": d.vocabSize, "dropout": Double(d.dropout),
                "attention": d.attentionActivation.rawValue, "gate": d.gate == .perChannel ? "vector" : "scalar",
            ] as [String: Any],
            "vocab": vocabulary,
            "max_length": maxLength,
        ]
    }
}
