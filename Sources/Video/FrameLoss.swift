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
            if let dLogits {
                let g = dLogits + r * d
                if let rowLoss {
                    var sum: Float = 0, total = 0.0
                    for j in 0..<d {
                        let v = x[j], e = expf(-abs(v))
                        let inverse = 1 / (1 + e)
                        sum += max(v, 0) - v * t[j] + log1pf(e)
                        g[j] = scale * ((v >= 0 ? inverse : e * inverse) - t[j])
                        if j & 255 == 255 { total += Double(sum); sum = 0 }
                    }
                    rowLoss[r] = total + Double(sum)
                } else {
                    for j in 0..<d {
                        let v = x[j], e = expf(-abs(v))
                        let inverse = 1 / (1 + e)
                        g[j] = scale * ((v >= 0 ? inverse : e * inverse) - t[j])
                    }
                }
            } else if let rowLoss {
                var sum: Float = 0, total = 0.0
                for j in 0..<d {
                    let v = x[j]
                    sum += max(v, 0) - v * t[j] + log1pf(expf(-abs(v)))
                    if j & 255 == 255 { total += Double(sum); sum = 0 }
                }
                rowLoss[r] = total + Double(sum)
            }
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
