import Foundation
import CaptionSupport
import CaptionData
import CaptionMetrics
import SyntheticWorld
import Captioning

/// One optimiser step, as logged.
public struct StepRecord: Equatable, Sendable {
    /// 1-based count of optimiser steps after this one.
    public var step: Int
    /// 0-based epoch and batch within it.
    public var epoch: Int
    /// 0-based index of the batch within its epoch.
    public var batch: Int
    /// The total loss optimised: crossEntropy + α_c · attentionPenalty (+ λ · attentionSupervision).
    public var loss: Float
    /// Mean −log p(target) over the batch's predicted tokens (natural log).
    public var crossEntropy: Float
    /// The doubly stochastic attention term ((1 − Σ_t α_t)²).mean(), before α_c.
    public var attentionPenalty: Float
    /// The attention supervision term before its weight (nil when supervision is off).
    public var attentionSupervision: Float? = nil
    /// ε: the teacher-forcing probability of this step (1 without scheduled sampling).
    public var epsilon: Double
    /// The decoder's learning rate at this step (after LR decay).
    public var learningRate: Float
    /// The encoder's learning rate (nil when it is frozen).
    public var encoderLearningRate: Float?
    /// Global gradient norm before clipping.
    public var gradientNorm: Float
    /// Captions in the batch.
    public var captions: Int
    /// Distinct images in the batch.
    public var images: Int
    /// Wall time of the step, batch preparation excluded when it was prefetched.
    public var seconds: Double

    /// `{"type": "step", "step": …}` on one line.
    public var jsonLine: String {
        var fields: [(String, String)] = [
            ("type", JSONLine.string("step")), ("step", "\(step)"), ("epoch", "\(epoch)"), ("batch", "\(batch)"),
            ("loss", JSONLine.number(loss)), ("cross_entropy", JSONLine.number(crossEntropy)),
            ("attention_penalty", JSONLine.number(attentionPenalty)), ("epsilon", JSONLine.number(epsilon)),
            ("lr", JSONLine.number(learningRate)),
        ]
        if let attentionSupervision { fields.append(("attention_supervision", JSONLine.number(attentionSupervision))) }
        if let encoderLearningRate { fields.append(("encoder_lr", JSONLine.number(encoderLearningRate))) }
        fields += [("grad_norm", JSONLine.number(gradientNorm)), ("captions", "\(captions)"), ("images", "\(images)"),
                   ("seconds", JSONLine.number((seconds * 1e4).rounded() / 1e4))]
        return JSONLine.object(fields)
    }
}

/// One validation: real inference (greedy or beam) on the validation images, scored like `caption eval`.
public struct ValidationRecord: Equatable, Sendable {
    /// Optimiser steps taken when the validation ran.
    public var step: Int
    /// 0-based epoch the validation belongs to.
    public var epoch: Int
    /// BLEU-1…BLEU-4, in that order.
    public var bleu: [Double]
    /// ROUGE-L of the generated captions.
    public var rougeL: Double
    /// CIDEr-D of the generated captions.
    public var ciderD: Double
    /// Teacher-forced cross-entropy of each validation image's first reference.
    public var loss: Float
    /// Validation images captioned and scored.
    public var images: Int
    /// Beam size used (1 = greedy).
    public var beam: Int
    /// True when BLEU-4 improved on every earlier validation (the model folder was rewritten).
    public var improved: Bool
    /// The best BLEU-4 so far, this validation included.
    public var bestBLEU4: Double
    /// Validations since the best one, after this one.
    public var sinceImprovement: Int
    /// The decoder learning rate after this validation's decay decision.
    public var learningRate: Float
    /// True when this validation ended the run (early stopping).
    public var stops: Bool
    /// Wall time of the validation.
    public var seconds: Double

    /// BLEU-4, the score that decides the best model, LR decay and early stopping.
    public var bleu4: Double { bleu[3] }

    /// `{"type": "validation", "step": …, "validation": {"BLEU-1": …}, …}` on one line.
    public var jsonLine: String {
        let metrics = JSONLine.object([
            ("BLEU-1", JSONLine.number(bleu[0])), ("BLEU-2", JSONLine.number(bleu[1])), ("BLEU-3", JSONLine.number(bleu[2])),
            ("BLEU-4", JSONLine.number(bleu[3])), ("ROUGE-L", JSONLine.number(rougeL)), ("CIDEr-D", JSONLine.number(ciderD)),
            ("loss", JSONLine.number(loss)), ("images", "\(images)"), ("beam", "\(beam)"),
        ])
        return JSONLine.object([
            ("type", JSONLine.string("validation")), ("step", "\(step)"), ("epoch", "\(epoch)"), ("validation", metrics),
            ("improved", improved ? "true" : "false"), ("best_bleu4", JSONLine.number(bestBLEU4)),
            ("since_improvement", "\(sinceImprovement)"), ("lr", JSONLine.number(learningRate)),
            ("early_stop", stops ? "true" : "false"), ("seconds", JSONLine.number((seconds * 100).rounded() / 100)),
        ])
    }
}

/// What a trainer reports while it runs (the CLI draws its progress from these).
public enum TrainingEvent {
    /// A line of information ("caching features of 4000 images").
    case message(String)
    /// Work before training: `what` done of `total` (feature caching).
    case preparing(what: String, done: Int, total: Int)
    /// Training starts (or resumes) at `step` of `totalSteps`.
    case started(step: Int, totalSteps: Int, batchesPerEpoch: Int, epochs: Int)
    case step(StepRecord)
    case validationStarted(step: Int)
    case validation(ValidationRecord)
    /// A checkpoint was written after `step` steps.
    case checkpoint(step: Int, path: String)
    /// The model folder was (re)written with the weights after `step` steps.
    case modelWritten(step: Int, path: String)
}

/// The JSONL training log: one object per step and per validation, appended and flushed as they happen. Its length
/// at each checkpoint is stored in the checkpoint, and a resumed run cuts the file back to it, so the log of a
/// resumed run reads like the log of an uninterrupted one.
final class TrainingLog {
    let path: String
    private let handle: FileHandle

    /// Opens (creating) the log and cuts it to `length` bytes (0 for a new run).
    init(path: String, truncatingTo length: UInt64) throws {
        self.path = path
        let fm = FileManager.default
        if !fm.fileExists(atPath: path) { _ = fm.createFile(atPath: path, contents: nil) }
        guard let h = FileHandle(forUpdatingAtPath: path) else { throw CaptionError(file: path, "cannot open the training log") }
        handle = h
        do {
            try handle.truncate(atOffset: length)
            try handle.seekToEnd()
        } catch {
            throw CaptionError(file: path, "cannot write the training log: \(error.localizedDescription)")
        }
    }

    deinit { try? handle.close() }

    func append(_ line: String) throws {
        do { try handle.write(contentsOf: Data((line + "\n").utf8)) } catch {
            throw CaptionError(file: path, "cannot write the training log: \(error.localizedDescription)")
        }
    }

    /// Bytes written so far (flushed to the OS; `synchronize` before a checkpoint makes it durable).
    func length() throws -> UInt64 {
        do {
            try handle.synchronize()
            return try handle.offset()
        } catch {
            throw CaptionError(file: path, "cannot write the training log: \(error.localizedDescription)")
        }
    }
}
