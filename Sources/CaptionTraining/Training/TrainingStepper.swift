import Foundation
import NN
import TensorCore
import Vision
import CaptionSupport
import CaptionData
import CaptionMetrics
import SyntheticWorld
import Captioning

/// One optimiser step of a captioning model, separate from data handling (so the PyTorch parity test drives it
/// directly):
///
///     a = encoder(images) (training mode)  or the given features (frozen encoder)
///     loss = CE(packed scores, packed targets) + α_c · ((1 − Σ_t α_t)²).mean()     (teacher forcing / scheduled sampling)
///            [+ λ · attention supervision]
///     backward → decoder gradients (+ encoder gradients through dL/da)
///     clip (global norm over all trainable parameters, or by value) → Adam (decoder) + Adam (encoder, its own LR)
///
/// Dropout masks and sampling coins come from an RNG seeded by (seed, step index): a step is a pure function of
/// the weights, the optimiser state, the batch and its index.
public final class TrainingStepper {
    /// The model whose weights each step updates in place.
    public let model: TrainableModel
    /// Loss weights, clipping, learning rates and scheduled sampling of each step.
    public let options: TrainingOptions
    /// The decoder's optimiser (`options.learningRate`, `options.weightDecay`).
    public let decoderAdam: Adam
    /// The encoder's optimiser when `options.fineTuneEncoder` (nil: the encoder is frozen).
    public let encoderAdam: Adam?
    let workspace = DecoderWorkspace()

    /// Fresh Adam states for the decoder and, when `options.fineTuneEncoder`, the encoder.
    public init(model: TrainableModel, options: TrainingOptions) {
        self.model = model
        self.options = options
        decoderAdam = Adam(count: model.decoderParameters.count, learningRate: options.learningRate,
                           weightDecay: options.weightDecay)
        encoderAdam = options.fineTuneEncoder
            ? Adam(count: model.encoder.parameters.count, learningRate: options.encoderLearningRate,
                   weightDecay: options.weightDecay)
            : nil
    }

    /// What one step reports.
    public struct Result: Sendable {
        /// The loss of the batch before the update, with its terms.
        public var loss: DecoderLoss
        /// Global gradient norm before clipping.
        public var gradientNorm: Float
        /// ε of this step.
        public var epsilon: Double
        /// Wall time of the step.
        public var seconds: Double
    }

    /// - `images`: N×3×S×S inputs (fine-tuned encoder) or N×L×D features (frozen) of the batch's distinct images;
    /// - `slot[i]`: which of them caption i describes; `captions[i]`: `<start> … <end>` ids;
    /// - `stepIndex`: 0-based index of this step in the run (seeds dropout and sampling, sets ε);
    /// - `lrScale`: the LR decay multiplier.
    /// - `attentionCells[i]`: with `options.attentionSupervision > 0`, caption i's target cells per step (see
    ///   `AttentionSupervision`).
    public func step(images: Tensor, slot: [Int], captions: [[Int]], stepIndex: Int, lrScale: Float = 1,
                     attentionCells: [[[Int]]]? = nil) -> Result {
        let started = DispatchTime.now().uptimeNanoseconds
        let dp = model.decoderParameters, ep = model.encoder.parameters
        let nD = model.encoder.featureDimension
        let fineTune = encoderAdam != nil

        var imageFeatures: Tensor, cache: Encoder.Cache?
        if fineTune {
            (imageFeatures, cache) = model.encoder.forwardTraining(images: images)
        } else {
            imageFeatures = images; cache = nil
        }
        let imageCount = imageFeatures.shape[0]
        let nL = imageFeatures.count / (imageCount * nD), rowSize = nL * nD
        let b = captions.count
        var features = Tensor(shape: [b, nL, nD])
        imageFeatures.withUnsafeBufferPointer { src in
            features.withUnsafeMutableBufferPointer { dst in
                for (i, s) in slot.enumerated() {
                    (dst.baseAddress! + i * rowSize).update(from: src.baseAddress! + s * rowSize, count: rowSize)
                }
            }
        }
        let sampling = TokenSampling(options.scheduledSampling, step: stepIndex)
        var rng = RNG(seed: mix64(options.seed ^ mix64(UInt64(stepIndex) &+ 0x5354_4550)))  // "STEP"
        let fwd = model.decoder.forward(features: features, captions: captions, lengths: captions.map(\.count), dp,
                                        workspace: workspace, training: true, rng: &rng, sampling: sampling)
        let supervision = attentionCells.map { AttentionSupervision(weight: options.attentionSupervision, cells: $0) }
        let (loss, dFeatures) = model.decoder.backward(fwd, alphaC: options.alphaC, dp, featureGradient: fineTune,
                                                       supervision: supervision)
        if let dFeatures, let cache {
            // Captions of the same image add their gradients.
            var dImages = Tensor(shape: imageFeatures.shape)
            dFeatures.withUnsafeBufferPointer { src in
                dImages.withUnsafeMutableBufferPointer { dst in
                    for (i, s) in slot.enumerated() {
                        Kernels.axpy(rowSize, 1, src.baseAddress! + i * rowSize, dst.baseAddress! + s * rowSize)
                    }
                }
            }
            model.encoder.backward(dImages, cache: cache)
        }

        let norm = clip(fineTune ? [dp, ep] : [dp])
        decoderAdam.learningRate = options.learningRate * lrScale
        decoderAdam.update(dp)
        dp.zeroGrads()
        if let encoderAdam {
            encoderAdam.learningRate = options.encoderLearningRate * lrScale
            encoderAdam.update(ep)
            ep.zeroGrads()
            model.encoder.invalidateInferenceWeights()
        }
        return Result(loss: loss, gradientNorm: norm, epsilon: sampling.teacherForcing,
                      seconds: Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9)
    }

    /// Clips the gradients of every trainable parameter of `groups` together (`clip_grad_norm_` over all of them, or
    /// `clip_grad_value_`); returns the global L2 norm before clipping.
    func clip(_ groups: [Parameters]) -> Float {
        var sum = 0.0
        for p in groups { let n = Double(GradientClipping.globalNorm(p)); sum += n * n }
        let norm = Float(sum.squareRoot())
        switch options.clipping {
        case .none: break
        case .norm(let maxNorm):
            let coefficient = maxNorm / (norm + 1e-6)
            if coefficient < 1 {
                for p in groups {
                    for param in p.layout.params where param.trainable { Kernels.scale(param.count, coefficient, p.grad(param)) }
                }
            }
        case .value(let maxValue):
            for p in groups { GradientClipping.clipByValue(p, maxValue: maxValue) }
        }
        return norm
    }
}
