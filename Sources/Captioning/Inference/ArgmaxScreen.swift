import CKernels
import NN
import TensorCore
import CaptionSupport
import CaptionData

/// Greedy decoding's word choice, argmax_j fc(h)_j, reading `fc` (V×H, 19 MB of the ~49 MB a step streams at the
/// tutorial's sizes) in half precision, with the same answer as the float product.
///
/// Each step: approximate logits ã = h·W̃ᵀ + b from a half copy W̃ of fc's weight, then every row j whose
/// interval ã_j ± D_j can still hold the largest float logit is recomputed from the float weights by the very
/// kernel `RowGEMM` uses for the full product (so those values are bit for bit the ones a full step gives).
/// Usually that is one to a few rows. The bound D_j covers both the weight rounding and the float rounding of
/// both sums, for a dot product of H terms plus the bias (γ = (H+2)·u/(1 − (H+2)·u), u = 2⁻²⁴):
///
///     |h·W̃_jᵀ − h·W_jᵀ| ≤ ‖h‖·‖W̃_j − W_j‖               (Cauchy–Schwarz)
///     |fl(sum) − sum|   ≤ γ·(‖h‖·‖W_j‖ + |b_j|)           (each of the two sums, ‖W̃_j‖ for the half one)
///     D_j = ‖h‖·(‖W̃_j − W_j‖ + γ(‖W_j‖ + ‖W̃_j‖)) + 2γ|b_j|,   inflated by 10⁻⁵ relative for the bound's own rounding
///
/// With m = max_j (ã_j − D_j), a row with ã_j + D_j < m cannot be the argmax: its float logit is below the
/// float logit of the row that attains m. Ties among the recomputed rows go to the lowest index.
/// If more than V/16 rows survive (an untrained model's nearly flat logits), the row is computed in full.
public final class ArgmaxScreen: @unchecked Sendable {
    /// V×H halves: fc's weight rounded to nearest.
    private let halves: UnsafeMutablePointer<UInt16>
    /// Per output row j: ‖W̃_j − W_j‖ + γ(‖W_j‖ + ‖W̃_j‖), and 2γ|b_j|.
    private let rowSlack: [Double], biasSlack: [Double]
    private let outputs: Int, inputs: Int

    /// The screen for `decoder`'s fc in `p`; nil when fc's weights are already halves (an F16 model file: the
    /// half copy is then exact and `HalfStepWeights` reads it directly).
    public init?(_ decoder: AttentionDecoder, _ p: Parameters) {
        let fc = decoder.fc
        let (n, k) = (fc.outFeatures, fc.inFeatures)
        let w = p.value(fc.weight), bias = fc.bias.map { p.value($0) }
        let u = 1.0 / Double(1 << 24), gamma = Double(k + 2) * u / (1 - Double(k + 2) * u)
        let halves = UnsafeMutablePointer<UInt16>.allocate(capacity: n * k)
        var rowSlack = [Double](repeating: 0, count: n), biasSlack = [Double](repeating: 0, count: n)
        var exact = true
        for j in 0..<n {
            var err = 0.0, norm = 0.0, halfNorm = 0.0
            for i in 0..<k {
                let v = w[j * k + i], h = Half.bits(v), hv = Double(Half.toFloat(h))
                halves[j * k + i] = h
                err += (hv - Double(v)) * (hv - Double(v))
                norm += Double(v) * Double(v)
                halfNorm += hv * hv
            }
            exact = exact && err == 0
            rowSlack[j] = (err.squareRoot() + gamma * (norm.squareRoot() + halfNorm.squareRoot())) * (1 + 1e-5)
            biasSlack[j] = 2 * gamma * Double(abs(bias?[j] ?? 0)) * (1 + 1e-5)
        }
        // Fail before `self` is complete, so that deinit does not run for the copy freed here.
        if exact { halves.deallocate(); return nil }
        self.halves = halves
        self.rowSlack = rowSlack
        self.biasSlack = biasSlack
        (outputs, inputs) = (n, k)
    }

    deinit { halves.deallocate() }

    /// Bytes held (the half copy).
    public var bytes: Int { outputs * inputs * MemoryLayout<UInt16>.stride }

    /// argmax_j of `fc(h)` for each of the `rows` rows of `h` (rows×H, at most `RowGEMM.maxRows`), exactly as the
    /// float logits of `AttentionDecoder.outputLogits` would give it (lowest index on ties). `recomputed`: how many
    /// output rows were computed in float, over all rows.
    func argmax(rows: Int, _ h: UnsafePointer<Float>, fc: Linear, _ p: Parameters) -> (words: [Int], recomputed: Int) {
        let (n, k) = (outputs, inputs)
        precondition(rows <= RowGEMM.maxRows && fc.outFeatures == n && fc.inFeatures == k)
        let w = UnsafePointer(p.value(fc.weight)), bias = fc.bias.map { UnsafePointer(p.value($0)) }
        var approx = [Float](repeating: 0, count: rows * n), words = [Int](repeating: 0, count: rows), recomputed = 0
        approx.withUnsafeMutableBufferPointer { a in
            RowGEMM.linear(m: rows, n: n, k: k, x: h, ldx: k, w: w, half: UnsafePointer(halves), bias: bias,
                           y: a.baseAddress!, ldy: n)
            for r in 0..<rows {
                let x = h + r * k, ar = a.baseAddress! + r * n
                var sq = 0.0
                for i in 0..<k { sq += Double(x[i]) * Double(x[i]) }
                let norm = sq.squareRoot()
                var floor = -Double.infinity
                for j in 0..<n { floor = max(floor, Double(ar[j]) - (norm * rowSlack[j] + biasSlack[j])) }
                var candidates: [Int] = []
                for j in 0..<n where Double(ar[j]) + (norm * rowSlack[j] + biasSlack[j]) >= floor {
                    candidates.append(j)
                    if candidates.count > n / 16 { break }
                }
                var best = -1, bestValue = -Float.infinity
                func consider(_ j: Int, _ v: Float) { if best < 0 || v > bestValue { (best, bestValue) = (j, v) } }
                if candidates.count > n / 16 {
                    // Too flat to screen: the whole row in float, as the full step computes it.
                    var full = [Float](repeating: 0, count: n)
                    full.withUnsafeMutableBufferPointer {
                        RowGEMM.linear(m: 1, n: n, k: k, x: x, ldx: k, w: w, bias: bias, y: $0.baseAddress!, ldy: n)
                    }
                    for j in 0..<n { consider(j, full[j]) }
                    recomputed += n
                } else {
                    for j in candidates {
                        var v: Float = 0
                        ck_linear_rows(1, 1, Int32(k), x, Int32(k), w + j * k, bias.map { $0 + j }, &v, 1, 0)
                        consider(j, v)
                    }
                    recomputed += candidates.count
                }
                words[r] = best
            }
        }
        return (words, recomputed)
    }
}
