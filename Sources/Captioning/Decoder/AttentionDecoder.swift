import NN
import TensorCore
import CaptionSupport
import CaptionData

/// Sizes and variant switches of the attention decoder.
public struct AttentionDecoderConfig: Codable, Equatable, Sendable {
    /// Nonlinearity of the attention MLP `full_att(act(encoder_att(a) + decoder_att(h)))`.
    public enum AttentionActivation: String, Codable, Sendable {
        /// The tutorial's choice.
        case relu
        /// The paper's (Xu et al. 2015, eq. 4 with an MLP f_att).
        case tanh
    }

    /// How the context vector is gated before entering the LSTM.
    public enum Gate: String, Codable, Sendable {
        /// The tutorial's `σ(f_beta(h))` with one gate per encoder channel (`f_beta`: D×H).
        case perChannel
        /// The paper's scalar β = σ(f_beta(h)) (`f_beta`: 1×H), section 4.2.1.
        case scalar
    }

    /// D: channels of each annotation vector a_l (2048 for ResNet-101).
    public var encoderDim: Int
    /// A: width of the attention MLP.
    public var attentionDim: Int
    /// E: word embedding size.
    public var embedDim: Int
    /// H: LSTM hidden size.
    public var decoderDim: Int
    /// V: vocabulary size, including `<pad>`, `<unk>`, `<start>`, `<end>`.
    public var vocabSize: Int
    /// Dropout probability before `fc` (training only).
    public var dropout: Float
    /// Nonlinearity `act` of the attention MLP: the tutorial's ReLU (default) or the paper's tanh.
    public var attentionActivation: AttentionActivation
    /// How the context vector is gated: per channel (default, `f_beta` H→D) or one scalar β (`f_beta` H→1).
    public var gate: Gate

    /// Defaults are the tutorial's: 512-wide attention, embedding and LSTM over 2048-channel ResNet features.
    public init(encoderDim: Int = 2048, attentionDim: Int = 512, embedDim: Int = 512, decoderDim: Int = 512,
                vocabSize: Int, dropout: Float = 0.5, attentionActivation: AttentionActivation = .relu,
                gate: Gate = .perChannel) {
        self.encoderDim = encoderDim
        self.attentionDim = attentionDim
        self.embedDim = embedDim
        self.decoderDim = decoderDim
        self.vocabSize = vocabSize
        self.dropout = dropout
        self.attentionActivation = attentionActivation
        self.gate = gate
    }

    /// Width of the gate: D per-channel, 1 scalar.
    public var gateWidth: Int { gate == .perChannel ? encoderDim : 1 }
}

/// The "Show, Attend and Tell" soft-attention LSTM decoder, parameter-compatible with sgrvinod's
/// a-PyTorch-Tutorial-to-Image-Captioning `DecoderWithAttention` (its `state_dict` names under `prefix`):
///
///     attention.encoder_att  Linear D→A        attention.decoder_att  Linear H→A     attention.full_att  Linear A→1
///     embedding              V×E               decode_step            LSTMCell(E+D → H)
///     init_h, init_c         Linear D→H        f_beta                 Linear H→D (paper variant: H→1)
///     fc                     Linear H→V
///
/// For annotation vectors a_1..a_L (L×D per image) and a word sequence, each step t computes
///
///     e_l = full_att(act(encoder_att(a_l) + decoder_att(h)))   α = softmax_l(e)      z = Σ_l α_l a_l
///     gate = σ(f_beta(h))                                      (h, c) = LSTM([embedding(y_t) ; gate ⊙ z], (h, c))
///     scores_t = fc(dropout(h))
///
/// from h_0 = init_h(mean_l a_l), c_0 = init_c(mean_l a_l).
///
/// - Training (teacher forcing, `AttentionDecoder+Training.swift`): `forward` / `backward` over a batch of
///   captions of different lengths, with the tutorial's loss and gradients for every parameter and for a_1..a_L.
/// - Inference (`AttentionDecoder+Inference.swift`): `encode` (encoder_att(a) once per image), `initState`, `step`.
public struct AttentionDecoder {
    /// The sizes D, A, E, H, V and variant switches the layers were built with.
    public let config: AttentionDecoderConfig
    /// `attention.encoder_att`, D→A: projects each annotation vector a_l.
    public let encoderAtt: Linear
    /// `attention.decoder_att`, H→A: projects the hidden state h.
    public let decoderAtt: Linear
    /// `attention.full_att`, A→1: one attention score e_l per location.
    public let fullAtt: Linear
    /// `embedding`, V×E: the input word vectors.
    public let embedding: Embedding
    /// `decode_step`, LSTMCell(E+D → H): reads `[embedding(y_t) ; gate ⊙ z]`.
    public let decodeStep: LSTMCell
    /// `init_h`, D→H: h_0 from the mean annotation vector.
    public let initH: Linear
    /// `init_c`, D→H: c_0 from the mean annotation vector.
    public let initC: Linear
    /// `f_beta`, H→D (per-channel gate) or H→1 (scalar gate): the gate's pre-activation.
    public let fBeta: Linear
    /// `fc`, H→V: the word scores of each step.
    public let fc: Linear
    /// Dropout on h before `fc`, in training only (`config.dropout`).
    public let dropout: Dropout

    /// Reserves the decoder's parameters under `prefix` (e.g. "decoder" → `decoder.decode_step.weight_ih`;
    /// "" gives the tutorial's bare `state_dict` names).
    public init(_ prefix: String = "", config: AttentionDecoderConfig, layout: inout ParameterLayout) {
        let c = config
        let name = { (s: String) in prefix.isEmpty ? s : prefix + "." + s }
        self.config = config
        encoderAtt = Linear(name("attention.encoder_att"), inFeatures: c.encoderDim, outFeatures: c.attentionDim, layout: &layout)
        decoderAtt = Linear(name("attention.decoder_att"), inFeatures: c.decoderDim, outFeatures: c.attentionDim, layout: &layout)
        fullAtt = Linear(name("attention.full_att"), inFeatures: c.attentionDim, outFeatures: 1, layout: &layout)
        embedding = Embedding(name("embedding"), count: c.vocabSize, dimension: c.embedDim, layout: &layout)
        decodeStep = LSTMCell(name("decode_step"), inputSize: c.embedDim + c.encoderDim, hiddenSize: c.decoderDim, layout: &layout)
        initH = Linear(name("init_h"), inFeatures: c.encoderDim, outFeatures: c.decoderDim, layout: &layout)
        initC = Linear(name("init_c"), inFeatures: c.encoderDim, outFeatures: c.decoderDim, layout: &layout)
        fBeta = Linear(name("f_beta"), inFeatures: c.decoderDim, outFeatures: c.gateWidth, layout: &layout)
        fc = Linear(name("fc"), inFeatures: c.decoderDim, outFeatures: c.vocabSize, layout: &layout)
        dropout = Dropout(probability: c.dropout)
    }

    /// The tutorial's initialisation: PyTorch defaults everywhere, then `init_weights()`: embedding and fc weight
    /// from U(−0.1, 0.1), fc bias 0.
    public func initialize(_ p: Parameters, rng: inout RNG) {
        for linear in [encoderAtt, decoderAtt, fullAtt] { linear.initializePyTorchDefault(p, rng: &rng) }
        embedding.initializeUniform(p, bound: 0.1, rng: &rng)
        decodeStep.initializePyTorchDefault(p, rng: &rng)
        for linear in [initH, initC, fBeta] { linear.initializePyTorchDefault(p, rng: &rng) }
        fc.initializeUniform(p, weightBound: 0.1, biasBound: 0, rng: &rng)
    }
}
