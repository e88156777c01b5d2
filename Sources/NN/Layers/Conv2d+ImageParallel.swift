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

    /// Bytes of im2col columns a worker handles at once (about half of a 1 MB L2).
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
    private func shuffledEpilogue(_ g: Geometry, images: Int, from: UnsafePointer<Float>, ldFrom: Int,
                                  to: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?, relu: Bool) {
        let (OC, P, oh, ow) = (outChannels, g.outPlane, g.oh, g.ow)
        for j in 0..<images {
            for oc in 0..<OC {
                let src = from + oc * ldFrom + j * P, image = to + j * OC * P, b = bias?[oc] ?? 0
                for i in 0..<oh {
                    let row = image + PixelShuffle.shuffledOffset(channel: oc, i: i, j: 0, height: oh, width: ow)
                    let s = src + i * ow
                    if relu { for jj in 0..<ow { row[2 * jj] = max(s[jj] + b, 0) } }
                    else { for jj in 0..<ow { row[2 * jj] = s[jj] + b } }
                }
            }
        }
    }

    /// The inverse of `shuffledEpilogue` for gradients: from `images` shuffled images in `from` into OC rows of
    /// `into` (image j at columns j·P ..< (j+1)·P, leading dimension `ld`), zero where `reluOutput` is not > 0.
    private func gatherShuffled(_ g: Geometry, images: Int, from: UnsafePointer<Float>, reluOutput: UnsafePointer<Float>?,
                                into: UnsafeMutablePointer<Float>, ld: Int) {
        let (OC, P, oh, ow) = (outChannels, g.outPlane, g.oh, g.ow)
        for j in 0..<images {
            for oc in 0..<OC {
                let dst = into + oc * ld + j * P
                for i in 0..<oh {
                    let offset = j * OC * P + PixelShuffle.shuffledOffset(channel: oc, i: i, j: 0, height: oh, width: ow)
                    let row = from + offset, d = dst + i * ow
                    if let mask = reluOutput.map({ $0 + offset }) {
                        for jj in 0..<ow { d[jj] = mask[2 * jj] > 0 ? row[2 * jj] : 0 }
                    } else {
                        for jj in 0..<ow { d[jj] = row[2 * jj] }
                    }
                }
            }
        }
    }
}
