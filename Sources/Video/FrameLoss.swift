#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
import TensorCore

/// Per-frame losses over rows of frame vectors (one row = one frame of one sequence), summed over a frame's
/// D elements: Bernoulli cross-entropy on logits for pixels, squared error for features. Rows are spread over
/// `Threads.count` workers; each row's sum is accumulated in Double.
public enum FrameLoss {
    /// `targetRow(r)` gives the target frame of row `r` (D floats).
    public typealias TargetRows = (Int) -> UnsafePointer<Float>

    /// Bernoulli cross-entropy of `sigmoid(logits)` against targets in [0, 1], as
    /// `F.binary_cross_entropy_with_logits(..., reduction="sum")` per row:
    /// `ℓ = max(x, 0) − x·t + log(1 + e^−|x|)`.
    ///
    /// Writes each row's loss into `rowLoss` (when given) and `scale · (σ(x) − t)` into `dLogits` (when
    /// given; it may alias `logits`).
    public static func bceWithLogits(rows: Int, dimension d: Int, logits: UnsafePointer<Float>, targets: TargetRows,
                                     rowLoss: UnsafeMutablePointer<Double>?, dLogits: UnsafeMutablePointer<Float>?,
                                     scale: Float) {
        parallelFor(rows) { r in
            let x = logits + r * d, t = targets(r)
            let g = dLogits.map { $0 + r * d }
            var total = 0.0
            var lanes = SIMD8<Float>()
            var j = 0
            // Eight at a time: e = exp(−|x|), σ(x) = (x ≥ 0 ? 1 : e) / (1 + e), ℓ = max(x, 0) − x·t + log(1 + e).
            while j + 8 <= d {
                let v = UnsafeRawPointer(x + j).loadUnaligned(as: SIMD8<Float>.self)
                let e = FastMath.expNonPositive(v.replacing(with: -v, where: v .> 0))   // −|x|
                if let g {
                    let tj = UnsafeRawPointer(t + j).loadUnaligned(as: SIMD8<Float>.self)
                    let numerator = SIMD8<Float>(repeating: 1).replacing(with: e, where: v .< 0)
                    let gradient = scale * (numerator / (1 + e) - tj)
                    UnsafeMutableRawPointer(g + j).storeBytes(of: gradient, as: SIMD8<Float>.self)
                }
                if rowLoss != nil {
                    let tj = UnsafeRawPointer(t + j).loadUnaligned(as: SIMD8<Float>.self)
                    lanes += v.replacing(with: 0, where: v .< 0) - v * tj + FastMath.log1pUnit(e)
                    if j & 511 == 504 { total += Double(lanes.sum()); lanes = .zero }
                }
                j += 8
            }
            total += Double(lanes.sum())
            while j < d {
                let v = x[j], e = expf(-abs(v))
                if let g { g[j] = scale * ((v >= 0 ? 1 : e) / (1 + e) - t[j]) }
                total += Double(max(v, 0) - v * t[j] + log1pf(e))
                j += 1
            }
            rowLoss?[r] = total
        }
    }

    /// Squared error `Σ (y − t)²` per row; `dPrediction = scale · 2(y − t)` (may alias `predictions`).
    public static func squaredError(rows: Int, dimension d: Int, predictions: UnsafePointer<Float>, targets: TargetRows,
                                    rowLoss: UnsafeMutablePointer<Double>?, dPrediction: UnsafeMutablePointer<Float>?,
                                    scale: Float) {
        parallelFor(rows) { r in
            let y = predictions + r * d, t = targets(r)
            var total = 0.0
            for j in 0..<d {
                let diff = y[j] - t[j]
                total += Double(diff * diff)
                dPrediction?[r * d + j] = scale * 2 * diff
            }
            rowLoss?[r] = total
        }
    }

    /// Bernoulli cross-entropy of probabilities `p` (clamped to [ε, 1 − ε]) against targets, summed per row:
    /// `−t·log p − (1 − t)·log(1 − p)`. For the copy-last and mean-frame baselines, whose 0/1 pixels would
    /// otherwise cost infinitely much when wrong.
    public static func bce(rows: Int, dimension d: Int, probabilities: (Int) -> UnsafePointer<Float>,
                           targets: TargetRows, epsilon: Float, rowLoss: UnsafeMutablePointer<Double>) {
        parallelFor(rows) { r in
            let p = probabilities(r), t = targets(r)
            var total = 0.0
            for j in 0..<d {
                let q = Double(min(max(p[j], epsilon), 1 - epsilon)), y = Double(t[j])
                total -= y * log(q) + (1 - y) * log(1 - q)
            }
            rowLoss[r] = total
        }
    }

    /// Squared error of predictions given per row (for the baselines of feature models).
    public static func squaredError(rows: Int, dimension d: Int, predictions: (Int) -> UnsafePointer<Float>,
                                    targets: TargetRows, rowLoss: UnsafeMutablePointer<Double>) {
        parallelFor(rows) { r in
            let y = predictions(r), t = targets(r)
            var total = 0.0
            for j in 0..<d { let diff = Double(y[j] - t[j]); total += diff * diff }
            rowLoss[r] = total
        }
    }
}

/// Vectorised elementary functions for the loss kernels (Cephes single-precision polynomials, within a few ulp
/// of glibc's expf / log1pf on their ranges here).
enum FastMath {
    /// e^x for x ≤ 0 (x below −87.3 is taken as −87.3: e^x ≈ 1e−38).
    @inline(__always) static func expNonPositive(_ x: SIMD8<Float>) -> SIMD8<Float> {
        let x = x.replacing(with: -87.3, where: x .< -87.3)
        // n = round(x / ln 2) by the 1.5·2²³ trick: the sum's low mantissa bits are n (in two's complement).
        let shifted = x * 1.442_695_04 + 12_582_912
        let n = shifted - 12_582_912
        let r = x - n * 0.693_359_375 + n * 2.121_944_4e-4        // x − n·ln 2, ln 2 split in two
        let z = r * r
        var p = SIMD8<Float>(repeating: 1.987_569_15e-4)
        p = p * r + 1.398_199_950_7e-3
        p = p * r + 8.333_451_907_3e-3
        p = p * r + 4.166_579_589_4e-2
        p = p * r + 1.666_666_545_9e-1
        p = p * r + 5.000_000_120_1e-1
        p = p * z + r + 1
        let exponent = (unsafeBitCast(shifted, to: SIMD8<UInt32>.self) &- 0x4B40_0000 &+ 127) &<< 23   // 2ⁿ as float bits
        return p * unsafeBitCast(exponent, to: SIMD8<Float>.self)
    }

    /// log(1 + e) for e in [0, 1], accurate also for tiny e (no 1 + e is formed there).
    @inline(__always) static func log1pUnit(_ e: SIMD8<Float>) -> SIMD8<Float> {
        // 1 + e = 2ᵏ·(1 + f) with f in [√½ − 1, √2 − 1): k = 0, f = e below √2 − 1; else k = 1, f = (e − 1)/2.
        let high = e .> 0.414_213_56
        let f = e.replacing(with: (e - 1) * 0.5, where: high)
        let k = SIMD8<Float>(repeating: 0).replacing(with: 1, where: high)
        let z = f * f
        var y = SIMD8<Float>(repeating: 7.037_683_629_2e-2)
        y = y * f - 1.151_461_031_0e-1
        y = y * f + 1.167_699_874_0e-1
        y = y * f - 1.242_014_084_6e-1
        y = y * f + 1.424_932_278_7e-1
        y = y * f - 1.666_805_766_5e-1
        y = y * f + 2.000_071_476_5e-1
        y = y * f - 2.499_999_399_3e-1
        y = y * f + 3.333_333_117_4e-1
        y = y * f * z
        y += k * -2.121_944_40e-4 - 0.5 * z
        return f + y + k * 0.693_359_375
    }
}
