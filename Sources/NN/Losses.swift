import TensorCore
#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// Softmax cross-entropy over rows of logits, as PyTorch's `nn.CrossEntropyLoss()` (reduction `mean`) computes it.
///
/// The captioning tutorial applies it to `pack_padded_sequence(scores, decode_lengths).data`, i.e. to exactly
/// the valid (non-padding) time steps, so the loss is the mean over all valid tokens of the batch. Pass those
/// rows (packed) here; there is no ignore index to get wrong.
public enum SoftmaxCrossEntropy {
    /// `logits`: N×C, `targets`: N class indices. Returns the mean loss and dLoss/dLogits (N×C).
    public static func forwardBackward(logits: Tensor, targets: [Int]) -> (loss: Float, dLogits: Tensor) {
        precondition(logits.rank == 2 && logits.shape[0] == targets.count,
                     "cross-entropy: logits \(logits.shape) for \(targets.count) targets")
        let (n, c) = (logits.shape[0], logits.shape[1])
        var d = Tensor(shape: [n, c])
        let loss = logits.withUnsafeBufferPointer { lb in
            d.withUnsafeMutableBufferPointer { db in
                targets.withUnsafeBufferPointer { tb in
                    forwardBackward(rows: n, classes: c, logits: lb.baseAddress!, targets: tb.baseAddress!,
                                    dLogits: db.baseAddress!, gradientScale: 1 / Float(max(n, 1)))
                }
            }
        }
        return (Float(loss / Double(max(n, 1))), d)
    }

    /// Mean loss only.
    public static func loss(logits: Tensor, targets: [Int]) -> Float {
        precondition(logits.rank == 2 && logits.shape[0] == targets.count)
        let (n, c) = (logits.shape[0], logits.shape[1])
        let sum = logits.withUnsafeBufferPointer { lb in
            targets.withUnsafeBufferPointer {
                forwardBackward(rows: n, classes: c, logits: lb.baseAddress!, targets: $0.baseAddress!,
                                dLogits: nil, gradientScale: 0)
            }
        }
        return Float(sum / Double(max(n, 1)))
    }

    /// Raw form: returns the *sum* over rows of −log softmax(logits)[target] (in Double), and when `dLogits` is
    /// given writes `gradientScale · (softmax − onehot)` into it (pass 1/N for the mean). `dLogits` may alias
    /// `logits`. Rows are spread over `Threads.count` workers: at the tutorial's vocabulary (~10k) this loop
    /// is a noticeable share of a training step.
    public static func forwardBackward(rows: Int, classes: Int, logits: UnsafePointer<Float>,
                                       targets: UnsafePointer<Int>, dLogits: UnsafeMutablePointer<Float>?,
                                       gradientScale: Float) -> Double {
        var rowLoss = [Double](repeating: 0, count: rows)
        rowLoss.withUnsafeMutableBufferPointer { lossBuffer in
            let losses = lossBuffer.baseAddress!
            parallelFor(rows, minChunk: max(1, 4096 / max(classes, 1))) { r in
                let x = logits + r * classes
                let t = targets[r]
                precondition(t >= 0 && t < classes, "cross-entropy: target \(t) outside 0..<\(classes)")
                let lse = Kernels.logSumExp(classes, x)
                losses[r] = Double(lse - x[t])
                if let dLogits {
                    let d = dLogits + r * classes
                    for j in 0..<classes { d[j] = expf(x[j] - lse) * gradientScale }
                    d[t] -= gradientScale
                }
            }
        }
        return rowLoss.reduce(0, +)
    }
}
