import Imaging
import NN
import TensorCore
import Vision
import CaptionSupport
import CaptionData
import CaptionMetrics
import SyntheticWorld
import Captioning

/// Everything that decides a training run's numbers: data, batching, optimisation, regularisation, scheduled
/// sampling, validation, LR decay and early stopping. A checkpoint stores the options it was made with, and a
/// resumed run uses them (only `epochs`, `maxSteps`, `checkpointEverySteps` and `validateEverySteps` may change).
///
/// Defaults follow the sgrvinod tutorial (`train.py`) where it has a value: batch 32, decoder LR 4e-4, encoder
/// LR 1e-4, α_c = 1, dropout 0.5 (in the decoder config), LR × 0.8 after every 8 validations without a better
/// BLEU-4, stop after 20. Gradient clipping is by global norm (5) by default; the tutorial's by-value clipping is
/// `.value(5)`.
public struct TrainingOptions: Codable, Equatable, Sendable {
    // MARK: Data

    /// Split trained on and split validated on (nil: no validation; the last weights are the model).
    public var trainSplit = "train"
    /// The split validated on (nil: no validation; the last weights are the model).
    public var validationSplit: String? = "val"
    /// Captions with more words are dropped (the tutorial's `max_len`), then images left without captions.
    public var maxCaptionWords = 50
    /// Words seen at most this often in the training captions become `<unk>` (the tutorial's rule; new vocabularies only).
    public var minWordFrequency = 5
    /// 0: batches of (image, caption) pairs, the tutorial's unit (every caption once per epoch). k > 0: batches of
    /// `batchSize` images with k of each image's captions (a fresh seeded choice each epoch; all when it has fewer),
    /// so the encoder runs once for k captions — much cheaper when it is fine-tuned.
    public var captionsPerImage = 0

    // MARK: Schedule

    /// Passes over the training split.
    public var epochs = 20
    /// Stop after this many optimiser steps in total (nil: run the epochs).
    public var maxSteps: Int?
    /// Pairs per batch (`captionsPerImage == 0`) or images per batch.
    public var batchSize = 32
    /// Seeds the initial weights, the batch order, dropout masks and scheduled-sampling coins.
    public var seed: UInt64 = 1

    // MARK: Optimisation

    /// Adam's learning rate for the decoder.
    public var learningRate: Float = 4e-4
    /// Adam's learning rate for the encoder when `fineTuneEncoder`.
    public var encoderLearningRate: Float = 1e-4
    /// Adam's L2 weight decay, for the decoder and the fine-tuned encoder alike (0: none).
    public var weightDecay: Float = 0
    /// Weight of the doubly stochastic attention term: loss = CE + α_c · ((1 − Σ_t α_t)²).mean().
    public var alphaC: Float = 1
    /// Weight λ of the attention supervision term (synthetic sets only, see `AttentionSupervision`): each colour and
    /// shape word of a training caption is pulled to look at the grid cells inside the boxes of the objects it
    /// names (`PointingAccuracy`'s rule), adding λ · mean(−log Σ_{cells} α) to the loss. 0 (the default): off,
    /// attention is learned from the captions alone as in the paper.
    public var attentionSupervision: Float = 0
    /// How gradients are clipped before Adam (default: global norm 5).
    public var clipping: Clipping = .norm(5)
    /// How the decoder's input words are chosen per step (default: pure teacher forcing).
    public var scheduledSampling = ScheduledSampling.teacherForcing
    /// Train the encoder (its own LR); false keeps it frozen (its features are computed once and cached).
    public var fineTuneEncoder = false
    /// With `fineTuneEncoder`: train from this module on (e.g. "layer2", the tutorial's `fine_tune`); nil: all.
    public var fineTuneFrom: String?

    // MARK: Validation, LR decay, early stopping

    /// Beam size of validation decoding (1 = greedy). Validation is real inference, never teacher-forced argmax.
    public var validationBeam = 1
    /// Validate on the first N images of the validation split (0: all).
    public var validationImages = 500
    /// Also validate every N steps (nil: only at the end of each epoch).
    public var validateEverySteps: Int?
    /// Multiply the learning rates by `lrDecayFactor` after every `lrPatience` validations without a new best
    /// BLEU-4 (0 disables decay).
    public var lrDecayFactor: Float = 0.8
    /// Validations without a new best BLEU-4 between LR decays (0 disables decay).
    public var lrPatience = 8
    /// Stop after `earlyStoppingPatience` validations without a new best BLEU-4 (0 disables).
    public var earlyStoppingPatience = 20
    /// Fine-tuned encoder: before each validation (and before the model is written), re-estimate BatchNorm's
    /// running statistics for the current weights from this many training-mode passes over fixed training batches
    /// (0: keep the running averages gathered during training, which lag behind fast-changing weights).
    public var batchNormRecalibration = 20

    // MARK: Checkpoints and caching

    /// Also checkpoint every N steps (a checkpoint is always written at the end of each epoch).
    public var checkpointEverySteps: Int?
    /// Memory for cached encoder features (frozen encoder) or decoded network inputs (fine-tuned encoder).
    public var cacheMemoryBytes = 2 << 30
    /// Disk for cached encoder features beyond the memory budget (frozen encoder only; deleted after the run).
    public var cacheDiskBytes = 10 << 30

    /// The defaults above (the tutorial's where it has one).
    public init() {}

    /// Gradient clipping, applied to all trainable parameters (decoder and fine-tuned encoder) together.
    public enum Clipping: Codable, Equatable, Sendable {
        case none
        /// `torch.nn.utils.clip_grad_norm_`: scale all gradients so that their global L2 norm is at most δ.
        case norm(Float)
        /// `torch.nn.utils.clip_grad_value_` (the tutorial's `clip_gradient`): clamp every element to [−δ, δ].
        case value(Float)
    }

    /// Checks ranges; the message names the option as the CLI spells it.
    public func validate() throws {
        func bad(_ s: String) -> CaptionError { .usage(s) }
        guard epochs >= 1 else { throw bad("--epochs must be at least 1") }
        guard batchSize >= 1 else { throw bad("--batch-size must be at least 1") }
        guard maxSteps.map({ $0 >= 1 }) ?? true else { throw bad("--max-steps must be at least 1") }
        guard learningRate > 0, encoderLearningRate >= 0 else { throw bad("learning rates must be positive") }
        guard alphaC >= 0 else { throw bad("--alpha-c must be non-negative") }
        guard attentionSupervision >= 0 else { throw bad("--attention-supervision must be non-negative") }
        guard maxCaptionWords >= 1 else { throw bad("--max-caption-words must be at least 1") }
        guard minWordFrequency >= 0 else { throw bad("--min-word-freq must be non-negative") }
        guard captionsPerImage >= 0 else { throw bad("--captions-per-image must be 0 (pairs) or positive") }
        guard validationBeam >= 1 else { throw bad("--val-beam must be at least 1") }
        guard validationImages >= 0 else { throw bad("--val-images must be 0 (all) or positive") }
        guard lrDecayFactor >= 0 && lrDecayFactor <= 1 else { throw bad("--lr-decay must be in [0, 1]") }
        guard lrPatience >= 0, earlyStoppingPatience >= 0 else { throw bad("patience values must be non-negative") }
        guard batchNormRecalibration >= 0 else { throw bad("--bn-recalibration must be non-negative") }
        guard checkpointEverySteps.map({ $0 >= 1 }) ?? true else { throw bad("--checkpoint-every must be at least 1") }
        guard validateEverySteps.map({ $0 >= 1 }) ?? true else { throw bad("--val-every must be at least 1") }
        switch clipping {
        case .none: break
        case .norm(let d), .value(let d): guard d > 0 else { throw bad("--clip threshold must be positive") }
        }
        let s = scheduledSampling
        guard s.minimum >= 0 && s.minimum <= 1 else { throw bad("--ss-min must be in [0, 1]") }
        switch s.kind {
        case .none: break
        case .linear: guard s.c >= 0 else { throw bad("--ss-c must be non-negative") }
        case .exponential: guard s.k > 0 && s.k < 1 else { throw bad("--ss-k must be in (0, 1) for the exponential schedule") }
        case .inverseSigmoid: guard s.k >= 1 else { throw bad("--ss-k must be at least 1 for the inverse-sigmoid schedule") }
        }
    }
}
