#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// Scheduled sampling (Bengio et al. 2015): at training step i, each decoder input token is the
/// ground truth with probability εᵢ (a coin per token) and otherwise the model's own previous
/// prediction. εᵢ decays from 1 (pure teacher forcing) as training goes on:
///
/// | schedule        | εᵢ                          | parameters                    |
/// |-----------------|-----------------------------|-------------------------------|
/// | none            | 1                           | (teacher forcing throughout)  |
/// | linear          | max(ε_min, k − c·i)         | k (start, ≤ 1), c (slope), ε_min |
/// | exponential     | max(ε_min, kⁱ)              | k < 1                         |
/// | inverse-sigmoid | max(ε_min, k / (k + exp(i/k))) | k ≥ 1                      |
///
/// Used by the captioning trainer and the video autoencoder's conditional decoders alike.
public struct ScheduledSampling: Codable, Equatable, Sendable {
    /// The schedule of εᵢ (see the table): `none` (always 1), `linear`, `exponential`, `inverseSigmoid` (spelt `inverse-sigmoid`).
    public enum Kind: String, Codable, CaseIterable, Sendable {
        case none, linear, exponential
        case inverseSigmoid = "inverse-sigmoid"
    }

    /// Which schedule εᵢ follows.
    public var kind: Kind
    /// k: the start value (linear), the decay base (exponential) or the sigmoid's scale (inverse-sigmoid).
    public var k: Double
    /// c: the linear schedule's decrease per step.
    public var c: Double
    /// The floor ε never goes below (the paper keeps some teacher forcing).
    public var minimum: Double
    /// Whether the model's token is sampled from its softmax (true) or taken as the argmax (false).
    public var sampleModelToken: Bool

    /// A schedule; `k` defaults per kind to 1 (none, linear), 0.9999 (exponential) or 1000 (inverse-sigmoid).
    public init(kind: Kind, k: Double? = nil, c: Double = 1e-4, minimum: Double = 0, sampleModelToken: Bool = false) {
        self.kind = kind
        switch kind {
        case .none, .linear: self.k = k ?? 1
        case .exponential: self.k = k ?? 0.9999
        case .inverseSigmoid: self.k = k ?? 1000
        }
        self.c = c
        self.minimum = minimum
        self.sampleModelToken = sampleModelToken
    }

    /// Pure teacher forcing.
    public static let teacherForcing = ScheduledSampling(kind: .none)

    /// εᵢ: the probability of feeding the ground-truth token at training step `step` (0-based).
    public func teacherForcingProbability(step: Int) -> Double {
        let i = Double(step)
        let eps: Double
        switch kind {
        case .none: return 1
        case .linear: eps = k - c * i
        case .exponential: eps = pow(k, i)
        case .inverseSigmoid: eps = k / (k + exp(i / k))
        }
        return min(1, max(minimum, eps))
    }
}
