import NN
import TensorCore
import CaptionSupport
import CaptionData
#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// Scheduled sampling inside one teacher-forced pass (Bengio et al. 2015): how `AttentionDecoder.forward` picks
/// the input word of every step after the first.
///
/// For each caption still decoding at step t ≥ 1 a coin is thrown: with probability ε (`teacherForcing`) the input
/// is the ground-truth word y_{t}, otherwise the model's own choice from the scores it produced at step t − 1
/// (the same scores the loss sees, dropout included): their argmax, or a word drawn from their softmax when
/// `sampleFromModel`. The choice is a constant of the pass: no gradient flows through it (the backward pass sees
/// the chosen word only as the embedding row that was read). Targets stay the ground truth.
///
/// The coins and draws come from the forward pass's `rng`, after the dropout mask, so a pass is a pure function of
/// its inputs and the generator state.
public struct TokenSampling: Equatable, Sendable {
    /// ε: the probability of feeding the ground-truth word.
    public var teacherForcing: Double
    /// Draw the model's word from softmax(scores) instead of taking the argmax.
    public var sampleFromModel: Bool

    /// Feeds the ground truth with probability `teacherForcing` (1 = plain teacher forcing), else the model's argmax or, with `sampleFromModel`, a softmax draw.
    public init(teacherForcing: Double, sampleFromModel: Bool = false) {
        self.teacherForcing = teacherForcing
        self.sampleFromModel = sampleFromModel
    }

    /// The choice at training step `step` of a schedule.
    public init(_ schedule: ScheduledSampling, step: Int) {
        self.init(teacherForcing: schedule.teacherForcingProbability(step: step),
                  sampleFromModel: schedule.sampleModelToken)
    }

    /// True when every input is the ground truth (ε ≥ 1): the plain teacher-forced pass.
    public var isTeacherForcing: Bool { teacherForcing >= 1 }

    /// One coin: true when the ground-truth word is fed (probability ε).
    @inline(__always)
    func feedsGroundTruth(_ rng: inout RNG) -> Bool { Double(rng.uniform()) < teacherForcing }

    /// The model's word from one row of `count` scores.
    func modelToken(_ scores: UnsafePointer<Float>, count: Int, rng: inout RNG) -> Int {
        guard sampleFromModel else { return Kernels.argmax(count, scores) }
        return TokenSampling.draw(scores, count: count, rng: &rng)
    }

    /// A class drawn from softmax(scores) by inverting the cumulative distribution with one uniform deviate.
    static func draw(_ scores: UnsafePointer<Float>, count: Int, rng: inout RNG) -> Int {
        var m = -Float.infinity
        for i in 0..<count { m = max(m, scores[i]) }
        var total: Double = 0
        for i in 0..<count { total += Double(expf(scores[i] - m)) }
        let u = Double(rng.uniform()) * total
        var cumulative: Double = 0
        for i in 0..<count {
            cumulative += Double(expf(scores[i] - m))
            if u < cumulative { return i }
        }
        // u rounded up to the total: the last class with any mass.
        var last = count - 1
        while last > 0 && expf(scores[last] - m) == 0 { last -= 1 }
        return last
    }
}
