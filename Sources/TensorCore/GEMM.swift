import COpenBLAS

/// Row-major single-precision matrix multiply through OpenBLAS:
/// `C[m×n] = alpha · op(A)[m×k] · op(B)[k×n] + beta · C`.
///
/// `op(X)` is `X` or `Xᵀ` per `transA` / `transB`. Leading dimensions are the row strides of the
/// matrices as stored (so a strided sub-block of a larger matrix can be passed directly):
/// `lda ≥ (transA ? m : k)`, `ldb ≥ (transB ? k : n)`, `ldc ≥ n`.
@inlinable
public func sgemm(
    transA: Bool = false, transB: Bool = false,
    m: Int, n: Int, k: Int,
    alpha: Float = 1,
    a: UnsafePointer<Float>, lda: Int? = nil,
    b: UnsafePointer<Float>, ldb: Int? = nil,
    beta: Float = 0,
    c: UnsafeMutablePointer<Float>, ldc: Int? = nil
) {
    let lda = lda ?? (transA ? m : k)
    let ldb = ldb ?? (transB ? k : n)
    let ldc = ldc ?? n
    precondition(m >= 0 && n >= 0 && k >= 0, "sgemm: negative size")
    precondition(lda >= max(1, transA ? m : k) && ldb >= max(1, transB ? k : n) && ldc >= max(1, n),
                 "sgemm: leading dimension too small")
    if m == 0 || n == 0 { return }
    if k == 0 {
        // BLAS leaves C untouched when k == 0 only if beta == 1; make the semantics explicit.
        for i in 0..<m { for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] } }
        return
    }
    let trA = transA ? CblasTrans : CblasNoTrans, trB = transB ? CblasTrans : CblasNoTrans
    let parts = Threads.count
    if parts > 1, m * n * k >= 1 << 18, Threads.splitsGEMM, !Threads.isInParallelRegion {
        // Inside Threads.withTeamGEMM: one block of C per worker. Split the side whose operand is the larger
        // (A is m×k, B is k×n: compare m with n), so each worker packs only its share of that one and all of
        // the smaller, unless that side is too short to split.
        let splitRows = m >= n ? m >= 8 * parts : n < 16 * parts
        parallelFor(parts) { p in
            if splitRows {
                let r0 = m * p / parts / 4 * 4, r1 = p == parts - 1 ? m : m * (p + 1) / parts / 4 * 4
                cblas_sgemm(CblasRowMajor, trA, trB, Int32(r1 - r0), Int32(n), Int32(k), alpha,
                            a + (transA ? r0 : r0 * lda), Int32(lda), b, Int32(ldb), beta, c + r0 * ldc, Int32(ldc))
            } else {
                let c0 = n * p / parts / 16 * 16, c1 = p == parts - 1 ? n : n * (p + 1) / parts / 16 * 16
                cblas_sgemm(CblasRowMajor, trA, trB, Int32(m), Int32(c1 - c0), Int32(k), alpha, a, Int32(lda),
                            b + (transB ? c0 * ldb : c0), Int32(ldb), beta, c + c0, Int32(ldc))
            }
        }
        return
    }
    cblas_sgemm(CblasRowMajor, trA, trB, Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb),
                beta, c, Int32(ldc))
}

/// Matrix-vector product `y[m] = alpha · op(A) · x + beta · y`, A stored row-major `rows×cols`.
@inlinable
public func sgemv(
    trans: Bool = false, rows: Int, cols: Int, alpha: Float = 1,
    a: UnsafePointer<Float>, lda: Int? = nil,
    x: UnsafePointer<Float>, beta: Float = 0, y: UnsafeMutablePointer<Float>
) {
    if rows == 0 || cols == 0 { return }
    cblas_sgemv(CblasRowMajor, trans ? CblasTrans : CblasNoTrans, Int32(rows), Int32(cols),
                alpha, a, Int32(lda ?? cols), x, 1, beta, y, 1)
}

extension Tensor {
    /// Matrix product of two rank-2 tensors, `op(self) · op(other)`.
    public func matmul(_ other: Tensor, transposeSelf: Bool = false, transposeOther: Bool = false) -> Tensor {
        precondition(rank == 2 && other.rank == 2, "matmul needs rank-2 tensors, got \(shape) and \(other.shape)")
        let m = transposeSelf ? shape[1] : shape[0]
        let k = transposeSelf ? shape[0] : shape[1]
        let k2 = transposeOther ? other.shape[1] : other.shape[0]
        let n = transposeOther ? other.shape[0] : other.shape[1]
        precondition(k == k2, "matmul: inner dimensions \(k) and \(k2) differ")
        var out = Tensor(shape: [m, n])
        withUnsafeBufferPointer { a in
            other.withUnsafeBufferPointer { b in
                out.withUnsafeMutableBufferPointer { c in
                    sgemm(transA: transposeSelf, transB: transposeOther, m: m, n: n, k: k,
                          a: a.baseAddress!, lda: shape[1], b: b.baseAddress!, ldb: other.shape[1],
                          c: c.baseAddress!)
                }
            }
        }
        return out
    }
}
