import TensorCore

// MARK: - Image-parallel convolution for few channels on small planes
//
// A convolution with few channels (a frame decoder's 16 → 64 or 16 → 4 on 16×16 / 32×32 planes) does little
// arithmetic per im2col element, so a batch-wide GEMM is bound by writing and re-reading its column matrix
// through memory. Each worker instead takes a few whole images at a time, as many as keep their columns
// (C·9 × G·H·W floats) within half of L2, and runs single-threaded BLAS on them. The backward pass
// accumulates each worker's weight gradient separately and adds them up at the end, so workers never write
// the same memory.

extension Conv2d {
    /// True when this layer's forward and backward split images over the workers (`imageParallel`).
    var usesImageParallel: Bool { imageParallel && !usesWinograd }

    /// Images per worker GEMM: `imagesPerGEMMOverride`, else as many as keep their im2col columns within
    /// `imageParallelColumnBytes`.
    func imageParallelGroup(_ g: Geometry) -> Int {
        if let o = imagesPerGEMMOverride { return max(1, min(o, g.n)) }
        return max(1, min(g.n, Conv2d.imageParallelColumnBytes / (g.kdim * g.outPlane * MemoryLayout<Float>.size)))
    }

    /// Bytes of im2col columns a worker handles at once (about half of a typical per-core L2, so the columns stay in cache while the GEMM reads them).
    static let imageParallelColumnBytes = 512 << 10

    /// The groups of images of a batch of `n`, dealt out to `workers` in contiguous runs.
    private func groups(_ n: Int, size: Int, workers: Int, worker: Int) -> StrideTo<Int> {
        let count = (n + size - 1) / size
        return Swift.stride(from: (count * worker / workers) * size, to: min(n, (count * (worker + 1) / workers) * size), by: size)
    }

    /// `forward` for `usesImageParallel`: y[group] = epilogue(W[OC × K] · col[K × G·P]). With `shuffled` the
    /// epilogue writes `nn.PixelShuffle(2)` of the output (N × OC/4 × 2·OH × 2·OW) instead.
    func forwardImageParallel(_ g: Geometry, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                              weight w: UnsafePointer<Float>, bias b: UnsafePointer<Float>?, relu: Bool,
                              shuffled: Bool = false, workspace ws: ConvWorkspace) {
        let P = g.outPlane, K = g.kdim, OC = outChannels, size = imageParallelGroup(g)
        let workers = max(1, min(Threads.count, (g.n + size - 1) / size))
        // Buffers are taken before the parallel region: the workspace itself is not thread-safe.
        let cols = (0..<workers).map { ws.buffer(3 + 2 * $0, count: K * P * size) }
        let outs = (0..<workers).map { ws.buffer(4 + 2 * $0, count: OC * P * size) }
        Threads.withSerialBLAS {
            parallelFor(workers) { worker in
                for n0 in groups(g.n, size: size, workers: workers, worker: worker) {
                    let count = min(size, g.n - n0)
                    im2col(g, x: x + n0 * g.inImage, images: count, imageStride: g.inImage, col: cols[worker])
                    sgemm(m: OC, n: count * P, k: K, a: w, b: cols[worker], c: outs[worker])
                    if shuffled {
                        shuffledEpilogue(g, images: count, from: outs[worker], ldFrom: count * P, to: y + n0 * OC * P,
                                         bias: b, relu: relu)
                    } else {
                        Conv2d.epilogue(channels: OC, plane: P, images: count, from: outs[worker], ldFrom: count * P,
                                        to: y + n0 * OC * P, bias: b, relu: relu)
                    }
                }
            }
        }
    }

    /// `backward` for `usesImageParallel`: dW[OC × K] += Σ dY_g · col_gᵀ, db += Σ dY, and (when `dx` is given)
    /// dx_g = col2im(Wᵀ · dY_g), for groups g of images split over the workers. With `shuffled`, `dy` is the
    /// gradient of the pixel-shuffled output (as `forwardImageParallel(shuffled: true)` wrote it), and
    /// `reluOutput` (that output, same layout) applies ReLU's backward as dY is gathered.
    func backwardImageParallel(_ g: Geometry, x: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                               dx: UnsafeMutablePointer<Float>?, _ p: Parameters, shuffled: Bool = false,
                               reluOutput: UnsafePointer<Float>? = nil, workspace ws: ConvWorkspace) {
        let P = g.outPlane, K = g.kdim, OC = outChannels, size = imageParallelGroup(g)
        let w = UnsafePointer(p.value(weight))
        let workers = max(1, min(Threads.count, (g.n + size - 1) / size))
        // Per worker: columns, the group's dY side by side, column gradients, and its own dW (and db).
        let cols = (0..<workers).map { ws.buffer(3 + 3 * $0, count: K * P * size) }
        let dYs = (0..<workers).map { ws.buffer(4 + 3 * $0, count: OC * P * size) }
        let dcols = (0..<workers).map { ws.buffer(5 + 3 * $0, count: K * P * size) }
        let gradCount = OC * K + OC
        let grads = UnsafeMutablePointer<Float>.allocate(capacity: workers * gradCount)
        grads.initialize(repeating: 0, count: workers * gradCount)
        defer { grads.deallocate() }
        Threads.withSerialBLAS {
            parallelFor(workers) { worker in
                let col = cols[worker], dY = dYs[worker], dcol = dcols[worker]
                let dw = grads + worker * gradCount, db = dw + OC * K
                for n0 in groups(g.n, size: size, workers: workers, worker: worker) {
                    let count = min(size, g.n - n0), cols = count * P
                    if shuffled {
                        gatherShuffled(g, images: count, from: dy + n0 * OC * P, reluOutput: reluOutput.map { $0 + n0 * OC * P },
                                       into: dY, ld: cols)
                    } else {
                        for j in 0..<count {
                            for oc in 0..<OC { (dY + oc * cols + j * P).update(from: dy + ((n0 + j) * OC + oc) * P, count: P) }
                        }
                    }
                    im2col(g, x: x + n0 * g.inImage, images: count, imageStride: g.inImage, col: col)
                    sgemm(transB: true, m: OC, n: K, k: cols, a: dY, b: col, beta: 1, c: dw)
                    for oc in 0..<OC { db[oc] += Kernels.sum(cols, dY + oc * cols) }
                    if let dx {
                        sgemm(transA: true, m: K, n: cols, k: OC, a: w, b: dY, c: dcol)
                        col2im(g, dcol: dcol, images: count, imageStride: g.inImage, dx: dx + n0 * g.inImage)
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

    /// The epilogue of a shuffled forward for `images` images: plane `oc` of image j (row `oc` of `from`, columns
    /// j·P ..< (j+1)·P) + bias, ReLU'd when `relu`, written to image j of `to` at its pixel-shuffled positions.
    /// Planes 4c + 2a and 4c + 2a + 1 interleave into the same output rows: both are read and each output row is
    /// written once, sixteen floats at a time when the plane's width is a multiple of 8.
    private func shuffledEpilogue(_ g: Geometry, images: Int, from: UnsafePointer<Float>, ldFrom: Int,
                                  to: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?, relu: Bool) {
        let (OC, P, oh, ow) = (outChannels, g.outPlane, g.oh, g.ow)
        for j in 0..<images {
            for oc in Swift.stride(from: 0, to: OC, by: 2) {   // phases b = 0 (oc) and b = 1 (oc + 1)
                let even = from + oc * ldFrom + j * P, odd = even + ldFrom
                let bEven = bias?[oc] ?? 0, bOdd = bias?[oc + 1] ?? 0
                let floor: Float = relu ? 0 : -.infinity
                for i in 0..<oh {
                    let row = to + j * OC * P + PixelShuffle.shuffledOffset(channel: oc, i: i, j: 0, height: oh, width: ow)
                    let e = even + i * ow, o = odd + i * ow
                    var jj = 0
                    if ow % 8 == 0 {
                        while jj < ow {
                            var v = SIMD16<Float>()
                            v.evenHalf = UnsafeRawPointer(e + jj).loadUnaligned(as: SIMD8<Float>.self) + bEven
                            v.oddHalf = UnsafeRawPointer(o + jj).loadUnaligned(as: SIMD8<Float>.self) + bOdd
                            if relu { v.replace(with: 0, where: v .< 0) }
                            UnsafeMutableRawPointer(row + 2 * jj).storeBytes(of: v, as: SIMD16<Float>.self)
                            jj += 8
                        }
                    }
                    while jj < ow {
                        row[2 * jj] = max(e[jj] + bEven, floor)
                        row[2 * jj + 1] = max(o[jj] + bOdd, floor)
                        jj += 1
                    }
                }
            }
        }
    }

    /// The inverse of `shuffledEpilogue` for gradients: from `images` shuffled images in `from` into OC rows of
    /// `into` (image j at columns j·P ..< (j+1)·P, leading dimension `ld`), zero where `reluOutput` is not > 0.
    /// Each shuffled row interleaves two planes' rows (phases b = 0, 1): it is read once and split in two, sixteen
    /// floats at a time when the plane's width is a multiple of 8.
    private func gatherShuffled(_ g: Geometry, images: Int, from: UnsafePointer<Float>, reluOutput: UnsafePointer<Float>?,
                                into: UnsafeMutablePointer<Float>, ld: Int) {
        let (OC, P, oh, ow) = (outChannels, g.outPlane, g.oh, g.ow)
        for j in 0..<images {
            for oc in Swift.stride(from: 0, to: OC, by: 2) {   // oc = 4c + 2a (phase b = 0) and oc + 1 (b = 1)
                let even = into + oc * ld + j * P, odd = even + ld
                for i in 0..<oh {
                    let offset = j * OC * P + PixelShuffle.shuffledOffset(channel: oc, i: i, j: 0, height: oh, width: ow)
                    let row = from + offset, mask = reluOutput.map { $0 + offset }
                    let e = even + i * ow, o = odd + i * ow
                    var jj = 0
                    if ow % 8 == 0 {
                        while jj < ow {
                            var v = UnsafeRawPointer(row + 2 * jj).loadUnaligned(as: SIMD16<Float>.self)
                            if let mask {
                                let m = UnsafeRawPointer(mask + 2 * jj).loadUnaligned(as: SIMD16<Float>.self)
                                v.replace(with: 0, where: .!(m .> 0))
                            }
                            UnsafeMutableRawPointer(e + jj).storeBytes(of: v.evenHalf, as: SIMD8<Float>.self)
                            UnsafeMutableRawPointer(o + jj).storeBytes(of: v.oddHalf, as: SIMD8<Float>.self)
                            jj += 8
                        }
                    }
                    while jj < ow {
                        let keepEven = mask.map { $0[2 * jj] > 0 } ?? true, keepOdd = mask.map { $0[2 * jj + 1] > 0 } ?? true
                        e[jj] = keepEven ? row[2 * jj] : 0
                        o[jj] = keepOdd ? row[2 * jj + 1] : 0
                        jj += 1
                    }
                }
            }
        }
    }
}
