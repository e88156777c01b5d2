import CKernels
import NN
import TensorCore
import CaptionSupport
import CaptionData

/// `y = x·Wᵀ + b` for the few rows of a decoding step (1 for greedy, k for a beam, k·n for n images).
///
/// SGEMM packs the weight matrix into blocks on every call, which pays off when many rows share the packing but
/// dominates when there are only a handful (3 rows against a 9490×512 `fc`): then reading the weights once is
/// the cost to beat. `ck_linear_rows` (C, AVX2+FMA when the CPU has it) streams W (PyTorch Linear layout,
/// out×in) exactly once, each weight row feeding the dot products of up to four input rows at a time; blocks of
/// output rows are split over `Threads.count` workers. Above `maxRows` rows SGEMM is the better choice and is used.
enum RowGEMM {
    /// Beyond this many rows `linear` hands over to SGEMM.
    static let maxRows = 32
    /// Output rows per parallel work item (a 32×2560 block of W is 320 KB: stays in L2 while the input rows
    /// go past it).
    static let block = 32

    /// `y[r, 0..<n] = x[r, 0..<k]·W[0..<n, 0..<k]ᵀ + bias` for r < m (`+=` when `accumulate`).
    /// Rows of x are `ldx` apart, rows of y `ldy` apart; W is dense n×k. `half`: the same W in half precision
    /// (exactly equal values, see `HalfStepWeights`), read instead of `w` by the row kernel.
    static func linear(m: Int, n: Int, k: Int, x: UnsafePointer<Float>, ldx: Int, w: UnsafePointer<Float>,
                       half: UnsafePointer<UInt16>? = nil, bias: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>,
                       ldy: Int, accumulate: Bool = false) {
        if m == 0 || n == 0 { return }
        if m > maxRows {
            bySGEMM(m: m, n: n, k: k, x: x, ldx: ldx, w: w, bias: bias, y: y, ldy: ldy, accumulate: accumulate)
            return
        }
        parallelFor((n + block - 1) / block) { b in
            let j0 = b * block, width = min(n, j0 + block) - j0
            if let half {
                ck_linear_rows_f16(Int32(m), Int32(width), Int32(k), x, Int32(ldx), half + j0 * k, bias.map { $0 + j0 },
                                   y + j0, Int32(ldy), accumulate ? 1 : 0)
            } else {
                ck_linear_rows(Int32(m), Int32(width), Int32(k), x, Int32(ldx), w + j0 * k, bias.map { $0 + j0 },
                               y + j0, Int32(ldy), accumulate ? 1 : 0)
            }
        }
    }

    /// `linear` by SGEMM, whatever the row count (float weights only).
    static func bySGEMM(m: Int, n: Int, k: Int, x: UnsafePointer<Float>, ldx: Int, w: UnsafePointer<Float>,
                        bias: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>, ldy: Int, accumulate: Bool = false) {
        if let bias {
            for r in 0..<m {
                let row = y + r * ldy
                if accumulate { for j in 0..<n { row[j] += bias[j] } } else { row.update(from: bias, count: n) }
            }
        }
        sgemm(transB: true, m: m, n: n, k: k, a: x, lda: ldx, b: w, ldb: k,
              beta: accumulate || bias != nil ? 1 : 0, c: y, ldc: ldy)
    }

    /// `layer` on `m` dense rows (`x` m×in → `y` m×out), from `half`'s copy of its weight when it has one.
    static func forward(_ layer: Linear, rows m: Int, _ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>,
                        _ p: Parameters, half: HalfStepWeights? = nil, accumulate: Bool = false) {
        linear(m: m, n: layer.outFeatures, k: layer.inFeatures, x: x, ldx: layer.inFeatures, w: p.value(layer.weight),
               half: half?.weights(layer.weight), bias: layer.bias.map { UnsafePointer(p.value($0)) }, y: y,
               ldy: layer.outFeatures, accumulate: accumulate)
    }

    /// True when the AVX2+FMA build of the kernel runs.
    static var usesAVX2: Bool { ck_uses_avx2() != 0 }

    /// Forbids (or allows again) the AVX2+FMA build, so tests can check the portable one.
    static func allowAVX2(_ allow: Bool) { _ = ck_allow_avx2(allow ? 1 : 0) }
}
