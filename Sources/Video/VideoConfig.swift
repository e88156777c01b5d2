import Foundation
import NN

/// Architecture and preprocessing of a video autoencoder: everything needed to rebuild the model from its
/// `config.json` (the `"video"` object), and nothing about how it was trained.
///
/// The model is Srivastava et al. (2015)'s LSTM autoencoder: an encoder RNN reads the observed frames
/// v₁…v_T; its final state is the code. A reconstruction decoder, started from that state, outputs
/// v_T…v₁ (reverse order); a future predictor, started from the same state, outputs v_{T+1}…v_{T+K}.
/// Either decoder may be absent (autoencoder-only, future-only) and each is *conditional* (it reads the
/// previous output frame; nothing at its first step) or *unconditioned* (no input at all).
///
/// Tensor names follow a PyTorch module tree:
///
///     frame_embed.{weight,bias}                      Linear D → E (optional, shared by the encoder and the
///                                                   conditional decoders' inputs)
///     encoder.{weight_ih,weight_hh,bias_ih,bias_hh}_l<k>[_reverse]     nn.LSTM / nn.GRU / nn.RNN
///     reconstruction.rnn.…_l<k>, reconstruction.readout.{weight,bias}   decoder RNN + Linear H' → D
///     future.rnn.…_l<k>,         future.readout.{weight,bias}
///     readout.{weight,bias}                          instead of the two above with `shared_readout`
///     ….readout.{fc,conv1,conv2}.…, ….readout.frame_bias   with `readout: conv` (`ConvFrameReadout`)
///
/// An unconditioned decoder's first layer has no input weights (its input is empty); PyTorch cannot build a
/// zero-input `nn.LSTM`, so the reference (scripts/video_reference.py) feeds it a constant zero of width 1
/// and its unused `weight_ih_l0` is simply not stored.
public struct VideoModelConfig: Codable, Equatable, Sendable {
    /// How one frame becomes a vector.
    public enum InputKind: String, Codable, CaseIterable, Sendable {
        /// Resized pixels in [0, 1], gray (1 channel) or RGB (3, channel-major), sigmoid output + Bernoulli
        /// cross-entropy.
        case pixels
        /// The captioning encoder's pooled feature vector, linear output + squared error.
        case features
    }

    /// The recurrent cell of the encoder and both decoders.
    public enum CellKind: String, Codable, CaseIterable, Sendable {
        case lstm, gru
        /// Elman RNN with tanh (PyTorch `nn.RNN`'s default) or ReLU.
        case rnnTanh = "rnn_tanh"
        case rnnReLU = "rnn_relu"
    }

    /// What a decoder reads at each step.
    public enum DecoderKind: String, Codable, CaseIterable, Sendable {
        /// No decoder.
        case none
        /// No input: the decoder runs on its state alone.
        case unconditioned
        /// The previous output frame (ground truth or its own prediction in training, its own prediction at
        /// inference); no input at the first step.
        case conditional
    }

    /// How a decoder's hidden state becomes a frame (`FrameReadout`).
    public enum ReadoutKind: String, Codable, CaseIterable, Sendable {
        /// `Linear(H', D)`.
        case linear
        /// Linear to 16 × S/4 × S/4, then two nearest-upsampling 3×3 convolutions (pixels; S divisible by 4).
        case conv
    }

    /// Loss per frame: summed over the frame's elements, averaged over frames.
    public enum Loss: String, Codable, Sendable {
        /// Bernoulli cross-entropy (pixels).
        case bce
        /// Squared error (features).
        case mse
    }

    /// What a frame is: pixels or a CNN feature vector (which also picks the loss).
    public var input: InputKind
    /// Frame side in pixels (frames are square), for `pixels`.
    public var frameSize: Int
    /// 1 (gray) or 3 (RGB), for `pixels`.
    public var channels: Int
    /// The feature vector's length, for `features` (set from the CNN encoder).
    public var featureDimension: Int
    /// The captioning model folder whose encoder made the features (for `features`; informational, the CLI
    /// takes `--encoder-weights` to override).
    public var featureEncoder: String?

    /// The recurrent cell of the encoder and both decoders.
    public var cell: CellKind
    /// H: the hidden size of each encoder layer and direction.
    public var hiddenSize: Int
    /// Stacked RNN layers, in the encoder and in each decoder.
    public var layers: Int
    /// Whether the encoder also reads the frames backwards (the decoders' H' is then 2H).
    public var bidirectional: Bool
    /// Width E of the shared frame embedding `frame_embed` (D → E); 0 feeds frames straight into the RNNs.
    public var embeddingSize: Int
    /// What the reconstruction decoder (outputs v_T…v₁) reads, or `none` for no such decoder.
    public var reconstruction: DecoderKind
    /// What the future predictor (outputs v_{T+1}…v_{T+K}) reads, or `none` for no such decoder.
    public var future: DecoderKind
    /// One readout `readout` (H' → D) for both decoders instead of one each (saves D·H' parameters).
    public var sharedReadout: Bool
    /// The readouts' architecture.
    public var readout: ReadoutKind
    /// Frames the encoder reads (T).
    public var observedFrames: Int
    /// Frames the future predictor outputs (K).
    public var futureFrames: Int

    /// A configuration; the defaults are the paper's: 64×64 gray pixels, one 256-unit LSTM, unconditioned
    /// decoders, 10 observed and 10 future frames.
    public init(input: InputKind = .pixels, frameSize: Int = 64, channels: Int = 1, featureDimension: Int = 0,
                featureEncoder: String? = nil, cell: CellKind = .lstm, hiddenSize: Int = 256, layers: Int = 1,
                bidirectional: Bool = false, embeddingSize: Int = 256, reconstruction: DecoderKind = .unconditioned,
                future: DecoderKind = .unconditioned, sharedReadout: Bool = false, readout: ReadoutKind = .linear,
                observedFrames: Int = 10, futureFrames: Int = 10) {
        self.input = input
        self.frameSize = frameSize
        self.channels = channels
        self.featureDimension = featureDimension
        self.featureEncoder = featureEncoder
        self.cell = cell
        self.hiddenSize = hiddenSize
        self.layers = layers
        self.bidirectional = bidirectional
        self.embeddingSize = embeddingSize
        self.reconstruction = reconstruction
        self.future = future
        self.sharedReadout = sharedReadout
        self.readout = readout
        self.observedFrames = observedFrames
        self.futureFrames = futureFrames
    }

    /// D: the length of one frame vector.
    public var frameDimension: Int {
        input == .pixels ? channels * frameSize * frameSize : featureDimension
    }
    /// The width of the encoder's input (E, or D without an embedding).
    public var rnnInputSize: Int { embeddingSize > 0 ? embeddingSize : frameDimension }
    /// The decoders' hidden size: the encoder's final states of both directions side by side.
    public var decoderHiddenSize: Int { (bidirectional ? 2 : 1) * hiddenSize }
    /// The loss the input kind implies: `bce` for pixels, `mse` for features.
    public var loss: Loss { input == .pixels ? .bce : .mse }
    /// Frames a training or evaluation sequence must have: T, plus K when there is a future predictor.
    public var framesNeeded: Int { observedFrames + (future == .none ? 0 : futureFrames) }
    /// Length of the code vector: every decoder-initial state (h, and c for LSTMs) of every layer.
    public var codeSize: Int { layers * decoderHiddenSize * (cell == .lstm ? 2 : 1) }

    /// One-line descriptions of what is wrong, empty when the configuration is usable.
    public func problems() -> [String] {
        var out: [String] = []
        if input == .pixels {
            if frameSize < 1 || frameSize > 1024 { out.append("frame size \(frameSize) outside 1...1024") }
            if channels != 1 && channels != 3 { out.append("channels must be 1 (gray) or 3 (RGB), got \(channels)") }
        } else if featureDimension < 1 {
            out.append("feature dimension must be positive, got \(featureDimension)")
        }
        if hiddenSize < 1 { out.append("hidden size must be positive, got \(hiddenSize)") }
        if layers < 1 || layers > 16 { out.append("layers must be in 1...16, got \(layers)") }
        if embeddingSize < 0 { out.append("embedding size must be ≥ 0, got \(embeddingSize)") }
        if reconstruction == .none && future == .none { out.append("the model needs a reconstruction decoder, a future predictor, or both") }
        if readout == .conv && (input != .pixels || frameSize % 4 != 0) {
            out.append("a convolutional readout needs pixel frames with a side divisible by 4")
        }
        if observedFrames < 1 { out.append("observed frames must be ≥ 1, got \(observedFrames)") }
        if future != .none && futureFrames < 1 { out.append("future frames must be ≥ 1, got \(futureFrames)") }
        return out
    }

    enum CodingKeys: String, CodingKey {
        case input, frameSize = "frame_size", channels, featureDimension = "feature_dimension"
        case featureEncoder = "feature_encoder", cell, hiddenSize = "hidden_size", layers, bidirectional
        case embeddingSize = "embedding_size", reconstruction, future, sharedReadout = "shared_readout", readout
        case observedFrames = "observed_frames", futureFrames = "future_frames"
    }

    /// Decodes config.json's `video` object; keys added after the first release are optional.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        input = try c.decode(InputKind.self, forKey: .input)
        frameSize = try c.decode(Int.self, forKey: .frameSize)
        channels = try c.decode(Int.self, forKey: .channels)
        featureDimension = try c.decode(Int.self, forKey: .featureDimension)
        featureEncoder = try c.decodeIfPresent(String.self, forKey: .featureEncoder)
        cell = try c.decode(CellKind.self, forKey: .cell)
        hiddenSize = try c.decode(Int.self, forKey: .hiddenSize)
        layers = try c.decode(Int.self, forKey: .layers)
        bidirectional = try c.decode(Bool.self, forKey: .bidirectional)
        embeddingSize = try c.decode(Int.self, forKey: .embeddingSize)
        reconstruction = try c.decode(DecoderKind.self, forKey: .reconstruction)
        future = try c.decode(DecoderKind.self, forKey: .future)
        sharedReadout = try c.decodeIfPresent(Bool.self, forKey: .sharedReadout) ?? false
        readout = try c.decodeIfPresent(ReadoutKind.self, forKey: .readout) ?? .linear
        observedFrames = try c.decode(Int.self, forKey: .observedFrames)
        futureFrames = try c.decode(Int.self, forKey: .futureFrames)
    }
}
