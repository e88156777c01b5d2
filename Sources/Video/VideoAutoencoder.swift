import CaptionSupport
import Foundation
import NN
import TensorCore

/// Frames of B sequences, time-major: `frames` is F × B × D (frame t of sequence b at row t·B + b), the
/// layout of PyTorch's `batch_first=False`.
public struct FrameBatch {
    /// F×B×D: frame t of sequence b at row t·B + b.
    public var frames: Tensor

    /// A batch over F×B×D `frames` (rank 3).
    public init(frames: Tensor) {
        precondition(frames.rank == 3, "FrameBatch needs F×B×D frames, got \(frames.shape)")
        self.frames = frames
    }

    /// F: frames per sequence.
    public var frameCount: Int { frames.shape[0] }
    /// B: sequences in the batch.
    public var batchSize: Int { frames.shape[1] }
    /// D: values per frame (channels × side × side pixels, or the feature length).
    public var dimension: Int { frames.shape[2] }
}

/// Mean per-frame losses of one training step (nil for an absent decoder).
public struct StepLosses: Equatable, Sendable {
    /// Mean per-frame loss of the reconstruction decoder.
    public var reconstruction: Double?
    /// Mean per-frame loss of the future predictor.
    public var future: Double?
    /// The optimised loss: the sum of the two.
    public var total: Double { (reconstruction ?? 0) + (future ?? 0) }
}

/// How a training step feeds its conditional decoders and cuts its gradients.
public struct TrainingFeed: Equatable, Sendable {
    /// ε: the probability of feeding a conditional decoder the ground-truth previous frame (1 = teacher
    /// forcing), drawn per sequence and step; see `ScheduledSampling`.
    public var teacherProbability: Double
    /// Feed Bernoulli-sampled pixels instead of probabilities when the decoder reads its own output.
    public var sampleFrames: Bool
    /// TBPTT(k1, k2) in the encoder and in each decoder; nil is full BPTT.
    public var truncation: TruncatedBPTT?
    /// The reconstruction loss's weight in the gradient (the future predictor's is 1). The losses returned
    /// stay unweighted.
    public var reconstructionWeight: Float

    /// A feed; the defaults are teacher forcing, probabilities fed back, full BPTT and equal loss weights.
    public init(teacherProbability: Double = 1, sampleFrames: Bool = false, truncation: TruncatedBPTT? = nil,
                reconstructionWeight: Float = 1) {
        self.teacherProbability = teacherProbability
        self.sampleFrames = sampleFrames
        self.truncation = truncation
        self.reconstructionWeight = reconstructionWeight
    }
}

/// The decoders' outputs for a batch at inference (conditional decoders read their own outputs).
public struct Inference {
    /// B × codeSize: each sequence's code (see `VideoModelConfig.codeSize`).
    public var code: Tensor
    /// T × B × D in natural time order (row t reconstructs frame t): logits for pixels, values for features.
    public var reconstruction: Tensor?
    /// K × B × D: the predicted frames T..<T+K, logits or values likewise.
    public var future: Tensor?
}

/// The type-erased core: one implementation per recurrent cell type.
protocol AutoencoderEngine: AnyObject {
    func initialize(_ p: Parameters, rng: inout RNG)
    func lossAndGradients(_ batch: FrameBatch, feed: TrainingFeed, computeLoss: Bool, _ p: Parameters,
                          rng: inout RNG) -> StepLosses
    func infer(_ batch: FrameBatch, _ p: Parameters) -> Inference
}

/// Srivastava et al. (2015)'s LSTM autoencoder for frame sequences, as a flat parameter buffer and
/// forward/backward passes. See `VideoModelConfig` for the architecture and its tensor names; the training
/// loop is `VideoTrainer`.
///
/// ```swift
/// let model = try VideoAutoencoder(config: VideoModelConfig(hiddenSize: 256))
/// model.initialize(seed: 1)
/// model.parameters.zeroGrads()
/// let losses = model.lossAndGradients(batch, rng: &rng)   // gradients accumulate into parameters.grads
/// ```
public final class VideoAutoencoder {
    /// The architecture the parameters were laid out for.
    public let config: VideoModelConfig
    /// Every weight and its gradient in one flat buffer, named as `VideoModelConfig` lists them.
    public let parameters: Parameters
    let engine: AutoencoderEngine

    /// Builds the model (all parameters zero; call `initialize` or load weights). Throws `CaptionError` for an
    /// unusable configuration.
    public init(config: VideoModelConfig) throws {
        if let problem = config.problems().first { throw CaptionError(file: "config", problem) }
        self.config = config
        var layout = ParameterLayout()
        switch config.cell {
        case .lstm:
            engine = AutoencoderCore<LSTMCell>(config, layout: &layout) { prefix, input, hidden, suffix, layout in
                LSTMCell(prefix, inputSize: input, hiddenSize: hidden, suffix: suffix, layout: &layout)
            }
        case .gru:
            engine = AutoencoderCore<GRUCell>(config, layout: &layout) { prefix, input, hidden, suffix, layout in
                GRUCell(prefix, inputSize: input, hiddenSize: hidden, suffix: suffix, layout: &layout)
            }
        case .rnnTanh, .rnnReLU:
            let nonlinearity: RNNCell.Nonlinearity = config.cell == .rnnTanh ? .tanh : .relu
            engine = AutoencoderCore<RNNCell>(config, layout: &layout) { prefix, input, hidden, suffix, layout in
                RNNCell(prefix, inputSize: input, hiddenSize: hidden, nonlinearity: nonlinearity, suffix: suffix,
                        layout: &layout)
            }
        }
        parameters = Parameters(layout)
    }

    /// Number of trainable values.
    public var parameterCount: Int { parameters.count }

    /// PyTorch's default initialisation of every module (U(±1/√fan) for Linear and RNN weights), seeded.
    public func initialize(seed: UInt64) {
        var rng = RNG(seed: seed)
        engine.initialize(parameters, rng: &rng)
    }

    /// Sets the forget-gate bias of every LSTM layer (`bias_ih`'s second block; `bias_hh`'s is zeroed) so that
    /// σ(bias) of the cell state is kept at the start (Gers et al. 2000; Jozefowicz et al. 2015 use 1).
    /// No effect on GRU and RNN cells.
    public func setForgetGateBias(_ value: Float) {
        guard config.cell == .lstm else { return }
        for param in parameters.layout.params where param.name.contains(".bias_ih") || param.name.contains(".bias_hh") {
            let h = param.count / 4
            let b = parameters.value(param) + h
            for j in 0..<h { b[j] = param.name.contains("bias_ih") ? value : 0 }
        }
    }

    /// Starts each readout at the data's mean frame: bias = logit(mean) for pixels (clamped to [1e-4, 1 − 1e-4]),
    /// the mean itself for features, and a zero weight contribution is left to training. `meanFrame` has D values.
    public func setOutputBias(meanFrame: [Float]) {
        precondition(meanFrame.count == config.frameDimension)
        for name in readoutNames(linear: "bias", conv: "frame_bias") {
            guard let param = parameters.layout.param(named: name) else { continue }
            let b = parameters.value(param)
            for j in 0..<param.count {
                let m = min(max(meanFrame[j], 1e-4), 1 - 1e-4)
                b[j] = config.loss == .bce ? logf(m / (1 - m)) : meanFrame[j]
            }
        }
    }

    /// Zeroes the readouts' last weights (the linear readout's `weight`, the convolutional one's `conv2.weight`),
    /// keeping their per-pixel biases: every decoder starts by predicting the bias frame alone, without the
    /// speckle a random readout paints over every output until training removes it. The hidden states still
    /// get gradients from the first update on (the weight then moves off zero).
    public func zeroReadoutWeights() {
        for name in readoutNames(linear: "weight", conv: "conv2.weight") {
            guard let param = parameters.layout.param(named: name) else { continue }
            parameters.value(param).update(repeating: 0, count: param.count)
        }
    }

    /// The parameter `<readout>.<suffix>` of every readout the model may have, for its readout kind.
    private func readoutNames(linear: String, conv: String) -> [String] {
        let suffix = config.readout == .conv ? conv : linear
        return ["reconstruction.readout", "future.readout", "readout"].map { "\($0).\(suffix)" }
    }

    /// Rounds every parameter to the nearest F16 value (what `VideoModelFolder.save(…, half: true)` stores).
    public func roundToHalfPrecision() {
        Half.round(parameters.values, count: parameters.count)
    }

    /// One forward and backward pass over `batch` (F ≥ `config.framesNeeded` frames; the first T are read, the
    /// next K predicted). Gradients are *added* to `parameters.grads`; the returned losses are the mean
    /// per-frame losses of each decoder (computed only when `computeLoss`, else nil).
    @discardableResult
    public func lossAndGradients(_ batch: FrameBatch, feed: TrainingFeed = TrainingFeed(), computeLoss: Bool = true,
                                 rng: inout RNG) -> StepLosses {
        precondition(batch.dimension == config.frameDimension && batch.frameCount >= config.framesNeeded,
                     "batch \(batch.frames.shape) for a model of \(config.framesNeeded) frames × \(config.frameDimension)")
        return engine.lossAndGradients(batch, feed: feed, computeLoss: computeLoss, parameters, rng: &rng)
    }

    /// Encodes the first T frames of each sequence and runs the decoders freely (a conditional decoder reads
    /// its own previous output).
    public func infer(_ batch: FrameBatch) -> Inference {
        precondition(batch.dimension == config.frameDimension && batch.frameCount >= config.observedFrames,
                     "batch \(batch.frames.shape) for a model of \(config.observedFrames) frames × \(config.frameDimension)")
        return engine.infer(batch, parameters)
    }
}

/// The autoencoder for one cell type.
final class AutoencoderCore<Cell: RecurrentCell>: AutoencoderEngine {
    typealias MakeCell = (String, Int, Int, String, inout ParameterLayout) -> Cell
    let config: VideoModelConfig
    /// `frame_embed`: D → E, shared by the encoder and the conditional decoders' inputs.
    let embed: Linear?
    let encoder: RecurrentStack<Cell>
    let reconstruction: FrameDecoder<Cell>?
    let future: FrameDecoder<Cell>?
    /// `readout`, when both decoders share one.
    let sharedReadout: FrameReadout?
    /// The decoders' logits buffers, kept from one training step to the next (several MB each: allocating them
    /// afresh costs page faults every step).
    private var logitsBuffers: [Role: Tensor] = [:]

    init(_ config: VideoModelConfig, layout: inout ParameterLayout, makeCell: MakeCell) {
        self.config = config
        let d = config.frameDimension
        embed = config.embeddingSize > 0
            ? Linear("frame_embed", inFeatures: d, outFeatures: config.embeddingSize, layout: &layout) : nil
        encoder = RecurrentStack(inputSize: config.rnnInputSize, hiddenSize: config.hiddenSize, numLayers: config.layers,
                                 bidirectional: config.bidirectional, layout: &layout) { input, suffix, layout in
            makeCell("encoder", input, config.hiddenSize, suffix, &layout)
        }
        let shared = config.sharedReadout
            ? FrameReadout("readout", hiddenSize: config.decoderHiddenSize, config: config, layout: &layout) : nil
        sharedReadout = shared
        func decoder(_ name: String, _ kind: VideoModelConfig.DecoderKind) -> FrameDecoder<Cell>? {
            if kind == .none { return nil }
            return FrameDecoder(name, layers: config.layers, inputSize: config.rnnInputSize,
                                hiddenSize: config.decoderHiddenSize, config: config, conditional: kind == .conditional,
                                sharedReadout: shared, layout: &layout, makeCell: makeCell)
        }
        reconstruction = decoder("reconstruction", config.reconstruction)
        future = decoder("future", config.future)
    }

    func initialize(_ p: Parameters, rng: inout RNG) {
        embed?.initializePyTorchDefault(p, rng: &rng)
        encoder.initializePyTorchDefault(p, rng: &rng)
        sharedReadout?.initializePyTorchDefault(p, rng: &rng)
        reconstruction?.initializePyTorchDefault(p, rng: &rng)
        future?.initializePyTorchDefault(p, rng: &rng)
    }

    // MARK: Encoder and the bridge to the decoders

    /// Reads T·B frame rows (time-major) → the decoders' initial states (one B × dirs·H per layer) and the
    /// encoder's cache.
    private func encode(_ observed: UnsafePointer<Float>, steps: Int, batch: Int, _ p: Parameters)
        -> (states: [RecurrentState], cache: RecurrentStack<Cell>.Cache) {
        let rows = steps * batch
        var input = Tensor(shape: [steps, batch, config.rnnInputSize])
        input.withUnsafeMutableBufferPointer { ib in
            if let embed {
                embed.forward(rows: rows, observed, into: ib.baseAddress!, p)      // T·B×D → T·B×E
            } else {
                ib.baseAddress!.update(from: observed, count: rows * config.frameDimension)
            }
        }
        let (_, final, cache) = encoder.forward(input, p)
        return (bridge(final, batch: batch), cache)
    }

    /// Encoder final states ((L·dirs)×B×H) → per layer l, B × dirs·H: [h_l,fwd ; h_l,rev] per row.
    private func bridge(_ final: RecurrentState, batch: Int) -> [RecurrentState] {
        let dirs = encoder.directions, hs = config.hiddenSize
        func gather(_ t: Tensor, layer: Int) -> Tensor {
            var out = Tensor(shape: [batch, dirs * hs])
            t.withUnsafeBufferPointer { src in
                out.withUnsafeMutableBufferPointer { dst in
                    for dir in 0..<dirs {
                        for b in 0..<batch {
                            (dst.baseAddress! + (b * dirs + dir) * hs)
                                .update(from: src.baseAddress! + ((layer * dirs + dir) * batch + b) * hs, count: hs)
                        }
                    }
                }
            }
            return out
        }
        return (0..<config.layers).map { l in RecurrentState(h: gather(final.h, layer: l), c: final.c.map { gather($0, layer: l) }) }
    }

    /// The inverse of `bridge` for gradients: per-layer B × dirs·H → (L·dirs)×B×H.
    private func unbridge(_ states: [RecurrentState], batch: Int) -> RecurrentState {
        let dirs = encoder.directions, hs = config.hiddenSize, layers = config.layers
        func scatter(_ parts: [Tensor]) -> Tensor {
            var out = Tensor(shape: [layers * dirs, batch, hs])
            out.withUnsafeMutableBufferPointer { dst in
                for (layer, part) in parts.enumerated() {
                    part.withUnsafeBufferPointer { src in
                        for dir in 0..<dirs {
                            for b in 0..<batch {
                                (dst.baseAddress! + ((layer * dirs + dir) * batch + b) * hs)
                                    .update(from: src.baseAddress! + (b * dirs + dir) * hs, count: hs)
                            }
                        }
                    }
                }
            }
            return out
        }
        let withCell = states[0].c != nil
        return RecurrentState(h: scatter(states.map(\.h)), c: withCell ? scatter(states.map { $0.c! }) : nil)
    }

    enum Role { case reconstruction, future }

    /// The decoders in order, each with its role, its length and the batch frame each step reproduces
    /// (reconstruction: T−1−k, reversed; future: T+k).
    private func decoders() -> [(Role, FrameDecoder<Cell>, steps: Int, frameOf: (Int) -> Int)] {
        let t = config.observedFrames, k = config.futureFrames
        var out: [(Role, FrameDecoder<Cell>, steps: Int, frameOf: (Int) -> Int)] = []
        if let reconstruction { out.append((.reconstruction, reconstruction, t, { t - 1 - $0 })) }
        if let future { out.append((.future, future, k, { t + $0 })) }
        return out
    }

    // MARK: Training

    func lossAndGradients(_ batch: FrameBatch, feed: TrainingFeed, computeLoss: Bool, _ p: Parameters,
                          rng: inout RNG) -> StepLosses {
        let (t, b, d) = (config.observedFrames, batch.batchSize, batch.dimension)
        var losses = StepLosses()
        batch.frames.withUnsafeBufferPointer { fb in
            let base = fb.baseAddress!
            let frame = { (index: Int) in base + index * b * d }   // B×D rows of frame `index`
            let (states, encoderCache) = encode(base, steps: t, batch: b, p)
            var dStates = states.map { RecurrentState(h: Tensor(shape: $0.h.shape), c: $0.c.map { Tensor(shape: $0.shape) }) }

            for (role, decoder, steps, frameOf) in decoders() {
                let rows = steps * b
                let teacher = DecoderFeed.teacher({ k in frame(frameOf(k - 1)) }, probability: feed.teacherProbability,
                                                  sample: feed.sampleFrames)
                var logits = logitsBuffers.removeValue(forKey: role) ?? Tensor(shape: [0])
                defer { logitsBuffers[role] = logits }
                let cache = decoder.forward(initial: states, steps: steps, feed: teacher, embed: embed, into: &logits, p, rng: &rng)
                // Loss and its gradient, in place: dLogits = w·(σ(x) − t) / (K·B)  (or w·2(y − t) / (K·B)).
                let scale = (role == .reconstruction ? feed.reconstructionWeight : 1) / Float(rows)
                var rowLoss = [Double](repeating: 0, count: computeLoss ? rows : 0)
                let targets = { (r: Int) in frame(frameOf(r / b)) + (r % b) * d }
                logits.withUnsafeMutableBufferPointer { lb in
                    rowLoss.withUnsafeMutableBufferPointer { rl in
                        switch config.loss {
                        case .bce:
                            FrameLoss.bceWithLogits(rows: rows, dimension: d, logits: lb.baseAddress!, targets: targets,
                                                    rowLoss: computeLoss ? rl.baseAddress : nil, dLogits: lb.baseAddress!,
                                                    scale: scale)
                        case .mse:
                            FrameLoss.squaredError(rows: rows, dimension: d, predictions: lb.baseAddress!, targets: targets,
                                                   rowLoss: computeLoss ? rl.baseAddress : nil, dPrediction: lb.baseAddress!,
                                                   scale: scale)
                        }
                    }
                }
                let mean: Double? = computeLoss ? rowLoss.reduce(0, +) / Double(rows) : nil
                if role == .reconstruction { losses.reconstruction = mean } else { losses.future = mean }

                let (dInitial, dEmbedded) = decoder.backward(logits, cache, truncation: feed.truncation, p)
                for l in 0..<dStates.count {
                    addRows(dInitial[l].h, into: &dStates[l].h, at: 0)
                    if let c = dInitial[l].c { addRows(c, into: &dStates[l].c!, at: 0) }
                }
                if let embed, let dEmbedded, let inputs = cache.inputFrames {
                    dEmbedded.withUnsafeBufferPointer { de in
                        inputs.withUnsafeBufferPointer { x in
                            embed.accumulateGradients(rows: inputs.shape[0], dy: de.baseAddress!, input: x.baseAddress!, p)
                        }
                    }
                }
            }

            let (dInput, _) = encoder.backward(nil, dFinal: unbridge(dStates, batch: b), encoderCache,
                                               truncation: feed.truncation, p)
            if let embed {
                dInput.withUnsafeBufferPointer { dz in
                    embed.accumulateGradients(rows: t * b, dy: dz.baseAddress!, input: base, p)   // dW_e += dZᵀ·X
                }
            }
        }
        return losses
    }

    // MARK: Inference

    func infer(_ batch: FrameBatch, _ p: Parameters) -> Inference {
        let (t, b, d) = (config.observedFrames, batch.batchSize, batch.dimension)
        var rng = RNG(seed: 0)  // unused: free-running decoders draw nothing
        return batch.frames.withUnsafeBufferPointer { fb in
            let (states, _) = encode(fb.baseAddress!, steps: t, batch: b, p)
            var code = Tensor(shape: [b, config.codeSize])
            code.withUnsafeMutableBufferPointer { cb in
                var offset = 0
                for b0 in 0..<b {
                    for state in states {
                        for part in [state.h] + (state.c.map { [$0] } ?? []) {
                            let w = part.shape[1]
                            part.withUnsafeBufferPointer { (cb.baseAddress! + offset).update(from: $0.baseAddress! + b0 * w, count: w) }
                            offset += w
                        }
                    }
                }
            }
            var result = Inference(code: code, reconstruction: nil, future: nil)
            for (role, decoder, steps, frameOf) in decoders() {
                var logits = Tensor(shape: [0])
                _ = decoder.forward(initial: states, steps: steps, feed: .free, embed: embed, into: &logits, p, rng: &rng)
                // Step order → natural frame order (the reconstruction runs backwards in time).
                var ordered = Tensor(shape: [steps, b, d])
                logits.withUnsafeBufferPointer { lb in
                    ordered.withUnsafeMutableBufferPointer { ob in
                        for k in 0..<steps {
                            let frameIndex = frameOf(k) - (role == .future ? t : 0)
                            (ob.baseAddress! + frameIndex * b * d).update(from: lb.baseAddress! + k * b * d, count: b * d)
                        }
                    }
                }
                if role == .future { result.future = ordered } else { result.reconstruction = ordered }
            }
            return result
        }
    }
}
