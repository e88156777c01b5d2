import TensorCore

// MARK: - Image-parallel convolution for few channels on small planes
//
// A convolution with few channels (a frame decoder's 16 → 64 or 16 → 4 on 16×16 / 32×32 planes) does little
// arithmetic per im2col element, so a batch-wide GEMM is bound by writing and re-reading its column matrix
// through memory. One image's columns (C·9 × H·W floats, ≤ ~600 KB here) fit in L2: each worker takes whole
// images, builds their columns in its own cache-resident buffer and runs single-threaded BLAS on them. The
// backward pass accumulates each worker's weight gradient separately and adds them up at the end, so workers
// never write the same memory.

extension Conv2d {
    /// Images this layer's forward and backward split over the workers, one at a time per worker
    /// (`imageParallel`).
    var usesImageParallel: Bool { imageParallel && !usesWinograd }

    /// `forward` for `usesImageParallel`: the row-blocked path with one block per image.
    func forwardImageParallel(_ g: Geometry, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                              weight w: UnsafePointer<Float>, bias b: UnsafePointer<Float>?, relu: Bool,
                              workspace ws: ConvWorkspace) {
        forwardRowBlocks(g, x: x, y: y, weight: w, bias: b, relu: relu, rowsPerBlock: g.oh, workspace: ws)
    }

    /// `backward` for `usesImageParallel`: dW[OC × K] += Σ_n dY_n · col_nᵀ, db += Σ dY, and (when
    /// `computeInputGradient`) dx_n = col2im(Wᵀ · dY_n), images split over the workers.
    func backwardImageParallel(_ g: Geometry, x: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                               dx: UnsafeMutablePointer<Float>?, _ p: Parameters, workspace ws: ConvWorkspace) {
        let P = g.outPlane, K = g.kdim, OC = outChannels
        let w = UnsafePointer(p.value(weight))
        let workers = max(1, min(Threads.count, g.n))
        // Per worker: a column buffer, a column-gradient buffer and its own dW (and db), taken before the
        // parallel region (the workspace is not thread-safe).
        let cols = (0..<workers).map { ws.buffer(3 + 2 * $0, count: K * P) }
        let dcols = (0..<workers).map { ws.buffer(4 + 2 * $0, count: K * P) }
        let gradCount = OC * K + OC
        let grads = UnsafeMutablePointer<Float>.allocate(capacity: workers * gradCount)
        grads.initialize(repeating: 0, count: workers * gradCount)
        defer { grads.deallocate() }
        Threads.withSerialBLAS {
            parallelFor(workers) { worker in
                let col = cols[worker], dcol = dcols[worker]
                let dw = grads + worker * gradCount, db = dw + OC * K
                for n in (g.n * worker / workers)..<(g.n * (worker + 1) / workers) {
                    let dYn = dy + n * OC * P
                    im2col(g, x: x + n * g.inImage, images: 1, imageStride: 0, col: col)
                    sgemm(transB: true, m: OC, n: K, k: P, a: dYn, b: col, beta: 1, c: dw)
                    for oc in 0..<OC { db[oc] += Kernels.sum(P, dYn + oc * P) }
                    if let dx {
                        sgemm(transA: true, m: K, n: P, k: OC, a: w, b: dYn, c: dcol)
                        col2im(g, dcol: dcol, images: 1, imageStride: 0, dx: dx + n * g.inImage)
                    }
                }
            }
        }
        let dw = p.grad(weight)
        for worker in 0..<workers {
            let local = grads + worker * gradCount
            Kernels.axpy(OC * K, 1, local, dw)
            if let bias { Kernels.axpy(OC, 1, local + OC * K, p.grad(bias)) }
        }
    }
}
