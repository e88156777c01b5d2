import Foundation
import TensorCore

// MARK: - Layer conventions (Conv2d, BatchNorm2d, pooling, activations)
//
// * A layer is a small value type: hyper-parameters plus `Param` handles into the model's flat parameter
//   buffer (`Parameters`). It owns no tensors, so building a model is cheap and the same layer value can be
//   used from several threads as long as each passes its own `Parameters` gradients / workspace.
// * Names follow PyTorch's module tree: `Conv2d("layer1.0.conv1", ...)` registers `layer1.0.conv1.weight`.
// * `forward(x, p) -> y`; `backward(dy, input: x, p) -> dx`. Parameter gradients are *accumulated* (`+=`)
//   into `p.grads`, so a layer applied to several batches or time steps sums naturally and zeroing is one
//   call (`p.zeroGrads()`).
// * Anything backward needs beyond the input/output is returned explicitly by forward as a cache
//   (`BatchNorm2d.forward` → `(y, cache)` with the statistics used, `MaxPool2d.forward` → `(y, cache)` with
//   argmax indices). No hidden state lives in the layer.
// * Weight initialisers are methods taking `inout RNG` (`initializeKaimingNormal(p, rng: &rng)`), separate
//   from construction, so loading a checkpoint skips them.
// * Scratch memory for im2col and GEMM staging comes from a `ConvWorkspace`: pass one explicitly, or let
//   the layer use the calling thread's shared workspace. Either way, steady-state calls allocate nothing
//   except their output tensor.
// * Tensors are N×C×H×W, contiguous, Float32, like PyTorch.

/// Reusable scratch buffers for convolutions (im2col columns, grouped GEMM outputs, column gradients).
///
/// Buffers only grow; one workspace serves every convolution of a model because layers run one after
/// another. A workspace must not be used by two threads at once: `ConvWorkspace.forCurrentThread`
/// (the default when a layer is given none) keeps one per thread.
public final class ConvWorkspace {
    private var slots: [(pointer: UnsafeMutablePointer<Float>, capacity: Int)] = []

    /// An empty workspace; buffers are allocated on first use.
    public init() {}

    deinit { release() }

    /// Scratch memory of at least `count` floats for `slot` (contents undefined). Asking for a slot does
    /// not invalidate the others.
    public func buffer(_ slot: Int, count: Int) -> UnsafeMutablePointer<Float> {
        while slots.count <= slot { slots.append((.allocate(capacity: 1), 1)) }
        if slots[slot].capacity < count {
            slots[slot].pointer.deallocate()
            slots[slot] = (.allocate(capacity: count), count)
        }
        return slots[slot].pointer
    }

    /// Bytes currently held.
    public var bytes: Int { slots.reduce(0) { $0 + $1.capacity } * MemoryLayout<Float>.stride }

    /// Frees all buffers (they are reallocated on the next use).
    public func release() {
        for s in slots { s.pointer.deallocate() }
        slots = []
    }

    private static let threadKey = "caption.NN.ConvWorkspace"

    /// The calling thread's shared workspace (created on first use, lives as long as the thread).
    public static var forCurrentThread: ConvWorkspace {
        let dict = Thread.current.threadDictionary
        if let ws = dict[threadKey] as? ConvWorkspace { return ws }
        let ws = ConvWorkspace()
        dict[threadKey] = ws
        return ws
    }
}

/// 2-D convolution (PyTorch `nn.Conv2d` with `dilation=1`, `groups=1`, square kernel/stride/padding).
///
/// Forward lowers to GEMM: `Y[OC × P] = W[OC × C·KH·KW] · col[C·KH·KW × P]` with `col = im2col(x)` and
/// `P = OH·OW`. Pointwise (1×1, no padding) stride-1 convolutions multiply the input planes directly;
/// 1×1 stride-2 ones subsample first. Three strategies, all giving the same result:
/// * large planes with a small weight matrix (stem, early 3×3 stages): cache blocks of output rows, each
///   worker doing im2col into its L2 and a single-threaded GEMM (`rowsPerBlock`);
/// * large planes otherwise: one image per GEMM, BLAS using every thread;
/// * small planes (deep layers): several images share one GEMM (their columns side by side) so the matrix is
///   wide enough for BLAS to run near peak (`imagesPerGEMM`).
/// Backward uses the last two (dW = dY·colᵀ needs the whole image anyway). 3×3 stride-1 padding-1
/// convolutions instead run forward and the input gradient by Winograd F(2×2, 3×3) (Conv2d+Winograd.swift;
/// the encoders' inference path transforms its folded weights once, `forwardWinograd`).
public struct Conv2d {
    /// Input channels C.
    public let inChannels: Int
    /// Output channels OC.
    public let outChannels: Int
    /// Side of the square kernel (KH = KW).
    public let kernelSize: Int
    /// Step between kernel positions, both directions.
    public let stride: Int
    /// Zero padding added on each side, both directions.
    public let padding: Int
    /// `outChannels × inChannels × kernelSize × kernelSize` (PyTorch layout).
    public let weight: Param
    /// `outChannels`, when the layer has a bias.
    public let bias: Param?
    /// Images per GEMM; `nil` chooses from the output plane size (see `imagesPerGEMM(batch:)`).
    /// Exposed for tests and tuning; every setting computes the same result.
    public var imagesPerGEMMOverride: Int?
    /// Output rows per cache block in forward (0 disables blocking); `nil` chooses automatically
    /// (see `rowsPerBlock`). Exposed for tests and tuning; every setting computes the same result.
    public var rowsPerBlockOverride: Int?
    /// `false` computes 3×3 stride-1 convolutions by im2col too (forward from parameters and the input
    /// gradient, which otherwise use Winograd); `nil` (default) lets them use it. For tests and tuning.
    public var winogradOverride: Bool?
    /// Split the batch's images over the workers, each image's im2col columns in one worker's cache (for
    /// few channels on small planes; see Conv2d+ImageParallel.swift). Every setting computes the same result
    /// up to the order of the weight gradient's sums. Not used together with Winograd.
    public var imageParallel = false
    /// `true` / `false` forces the direct 3×3 kernels on or off where they apply (3×3, stride 1, padding 1,
    /// width a multiple of 8); `nil` (default) uses them for at most 8 output channels. See Conv2d+Direct.swift.
    public var directOverride: Bool?

    /// Registers `"\(name).weight"` (and `"\(name).bias"` when `bias`) in `layout`.
    public init(_ name: String, inChannels: Int, outChannels: Int, kernelSize: Int, stride: Int = 1,
                padding: Int = 0, bias: Bool = true, layout: inout ParameterLayout) {
        precondition(inChannels > 0 && outChannels > 0 && kernelSize > 0 && stride > 0 && padding >= 0)
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernelSize = kernelSize
        self.stride = stride
        self.padding = padding
        self.weight = layout.add("\(name).weight", [outChannels, inChannels, kernelSize, kernelSize])
        self.bias = bias ? layout.add("\(name).bias", [outChannels]) : nil
    }

    /// Output plane size for an input plane (PyTorch's floor formula).
    public func outputSize(height: Int, width: Int) -> (height: Int, width: Int) {
        ((height + 2 * padding - kernelSize) / stride + 1, (width + 2 * padding - kernelSize) / stride + 1)
    }

    /// Multiply–adds × 2 of one forward pass over an `N×C×H×W` input (for GFLOP/s reports).
    public func flops(batch: Int, height: Int, width: Int) -> Int {
        let (oh, ow) = outputSize(height: height, width: width)
        return 2 * batch * outChannels * oh * ow * inChannels * kernelSize * kernelSize
    }

    // MARK: Initialisation

    /// Kaiming-normal weights with `mode="fan_out"`, ReLU gain (torchvision ResNet):
    /// `W ~ N(0, 2 / (OC·KH·KW))`; bias zero.
    public func initializeKaimingNormal(_ p: Parameters, rng: inout RNG) {
        let std = (2 / Float(outChannels * kernelSize * kernelSize)).squareRoot()
        let w = p.value(weight)
        for i in 0..<weight.count { w[i] = std * rng.normal() }
        if let bias { Kernels.fill(p.value(bias), bias.count, 0) }
    }

    /// PyTorch's default `nn.Conv2d` initialisation: weight and bias ~ U(−1/√fan_in, 1/√fan_in)
    /// (`kaiming_uniform_(a=√5)`), fan_in = C·KH·KW.
    public func initializePyTorchDefault(_ p: Parameters, rng: inout RNG) {
        let bound = 1 / Float(inChannels * kernelSize * kernelSize).squareRoot()
        let w = p.value(weight)
        for i in 0..<weight.count { w[i] = rng.uniform(-bound, bound) }
        if let bias {
            let b = p.value(bias)
            for i in 0..<bias.count { b[i] = rng.uniform(-bound, bound) }
        }
    }

    // MARK: Forward

    /// `x: N×C×H×W → N×OC×OH×OW`, optionally followed by ReLU (fused into the GEMM epilogue).
    public func forward(_ x: Tensor, _ p: Parameters, relu: Bool = false, workspace: ConvWorkspace? = nil) -> Tensor {
        if usesWinograd && !usesDirect(geometry(x.shape)) {
            let ws = workspace ?? .forCurrentThread
            return forwardWinograd(x, transformedWeight: transformedWeight(p, ws), bias: bias.map { UnsafePointer(p.value($0)) },
                                   relu: relu, workspace: ws)
        }
        return forward(x, weight: p.value(weight), bias: bias.map { UnsafePointer(p.value($0)) }, relu: relu,
                workspace: workspace)
    }

    /// Forward with explicit weights (`OC×C×KH×KW`) and bias (`OC`), e.g. BatchNorm-folded ones from
    /// `BatchNorm2d.fold(_:_:)`; this layer's own `Param`s are not read.
    public func forward(_ x: Tensor, weight w: UnsafePointer<Float>, bias b: UnsafePointer<Float>?,
                        relu: Bool = false, workspace: ConvWorkspace? = nil) -> Tensor {
        let g = geometry(x.shape)
        let ws = workspace ?? .forCurrentThread
        let group = imagesPerGEMM(batch: g.n, plane: g.outPlane)
        let P = g.outPlane, K = g.kdim, OC = outChannels
        var y = Tensor(shape: [g.n, OC, g.oh, g.ow], unsafeUninitialized: { _ in })
        let blockRows = rowsPerBlock(g)
        x.withUnsafeBufferPointer { xb in
            y.withUnsafeMutableBufferPointer { yb in
                let x = xb.baseAddress!, y = yb.baseAddress!
                if usesDirect(g) {
                    forwardDirect(g, x: x, y: y, weight: w, bias: b, relu: relu, workspace: ws)
                    return
                }
                if usesImageParallel {
                    forwardImageParallel(g, x: x, y: y, weight: w, bias: b, relu: relu, workspace: ws)
                    return
                }
                if let blockRows {
                    forwardRowBlocks(g, x: x, y: y, weight: w, bias: b, relu: relu, rowsPerBlock: blockRows, workspace: ws)
                    return
                }
                var n0 = 0
                while n0 < g.n {
                    let count = min(group, g.n - n0)
                    let cols = count * P
                    if count == 1 {
                        // One image: GEMM straight into its output plane block.
                        let xn = x + n0 * g.inImage
                        let yn = y + n0 * OC * P
                        let col: UnsafePointer<Float>
                        if g.isDirect { col = xn } else {
                            let buf = ws.buffer(0, count: K * P)
                            im2col(g, x: xn, images: 1, imageStride: 0, col: buf)
                            col = UnsafePointer(buf)
                        }
                        sgemm(m: OC, n: P, k: K, a: w, b: col, c: yn)
                        Conv2d.epilogue(channels: OC, plane: P, images: 1, from: yn, ldFrom: P, to: yn, bias: b, relu: relu)
                    } else {
                        // Several images side by side: col[K × count·P], out[OC × count·P], then scatter.
                        let col = ws.buffer(0, count: K * cols)
                        im2col(g, x: x + n0 * g.inImage, images: count, imageStride: g.inImage, col: col)
                        let out = ws.buffer(1, count: OC * cols)
                        sgemm(m: OC, n: cols, k: K, a: w, b: col, c: out)
                        Conv2d.epilogue(channels: OC, plane: P, images: count, from: out, ldFrom: cols,
                                        to: y + n0 * OC * P, bias: b, relu: relu)
                    }
                    n0 += count
                }
            }
        }
        return y
    }

    /// Cache-blocked forward for convolutions with a small weight matrix and large planes (ResNet's stem and
    /// first stage): im2col for a block of output rows fits in L2, so the GEMM reads it from cache instead of
    /// memory. Each worker runs its own blocks with single-threaded BLAS, so there is no synchronisation inside
    /// GEMMs and no im2col traffic between cores.
    private func forwardRowBlocks(_ g: Geometry, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                                  weight w: UnsafePointer<Float>, bias b: UnsafePointer<Float>?, relu: Bool,
                                  rowsPerBlock rows: Int, workspace ws: ConvWorkspace) {
        let P = g.outPlane, K = g.kdim, OC = outChannels, kk = g.k * g.k
        let blocksPerImage = (g.oh + rows - 1) / rows
        let total = g.n * blocksPerImage
        let workers = max(1, min(Threads.count, total))
        // Buffers are taken before the parallel region: the workspace itself is not thread-safe.
        let cols = (0..<workers).map { ws.buffer(3 + $0, count: K * rows * g.ow) }
        Threads.withSerialBLAS {
            parallelFor(workers) { worker in
                let col = cols[worker]
                for item in (total * worker / workers)..<(total * (worker + 1) / workers) {
                    let n = item / blocksPerImage
                    let r0 = (item % blocksPerImage) * rows, r1 = min(g.oh, r0 + rows)
                    let width = (r1 - r0) * g.ow
                    let xn = x + n * g.inImage
                    for r in 0..<K {
                        let c = r / kk, kh = (r / g.k) % g.k, kw = r % g.k
                        Conv2d.im2colRow(g, plane: xn + c * g.inPlane, kh: kh, kw: kw, rows: r0..<r1, dst: col + r * width)
                    }
                    // y[n][:, r0·OW ..< r1·OW] = W[OC × K] · col[K × width]  (ldc = P: a column block of the plane)
                    let yBlock = y + n * OC * P + r0 * g.ow
                    sgemm(m: OC, n: width, k: K, a: w, b: col, ldb: width, c: yBlock, ldc: P)
                    if b != nil || relu {
                        for oc in 0..<OC {
                            let row = yBlock + oc * P
                            let bias = b?[oc] ?? 0
                            if relu { for i in 0..<width { row[i] = max(row[i] + bias, 0) } }
                            else { for i in 0..<width { row[i] += bias } }
                        }
                    }
                }
            }
        }
    }

    /// Output rows per cache block for `forwardRowBlocks`, or nil to use whole-image / grouped GEMMs.
    /// Blocking pays when the weight matrix is small (each block's GEMM repacks it) and an image's im2col
    /// matrix is too big for L2: ResNet's 7×7 stem and its 64- and 128-channel 3×3 convolutions.
    func rowsPerBlock(_ g: Geometry) -> Int? {
        if let o = rowsPerBlockOverride { return o > 0 ? min(o, g.oh) : nil }
        if g.isDirect || imagesPerGEMM(batch: g.n, plane: g.outPlane) > 1 { return nil }
        guard outChannels * g.kdim * MemoryLayout<Float>.size <= Conv2d.blockedWeightLimit else { return nil }
        let columns = max(Conv2d.blockedMinimumColumns, Conv2d.blockedColumnBytes / (g.kdim * MemoryLayout<Float>.size))
        let rows = max(1, columns / g.ow)
        return rows < g.oh ? rows : nil
    }

    /// Largest weight matrix (bytes) for which the row-blocked path is used.
    static let blockedWeightLimit = 640 << 10
    /// Target size of one block's im2col matrix (about half of a typical per-core L2).
    static let blockedColumnBytes = 512 << 10
    /// Fewest GEMM columns per block, so the GEMM itself stays efficient.
    static let blockedMinimumColumns = 256

    // MARK: Backward

    /// Accumulates `dW` (and `db`) into `p.grads` and returns `dx` (`N×C×H×W`).
    /// `dy` is the gradient of the convolution's output (apply ReLU's backward first if ReLU was fused).
    public func backward(_ dy: Tensor, input x: Tensor, _ p: Parameters, workspace: ConvWorkspace? = nil) -> Tensor {
        backward(dy, input: x, p, computeInputGradient: true, workspace: workspace)!
    }

    /// Accumulates `dW` (and `db`) only, skipping `dx` (for a network's first layer).
    public func accumulateParameterGradients(_ dy: Tensor, input x: Tensor, _ p: Parameters,
                                             workspace: ConvWorkspace? = nil) {
        _ = backward(dy, input: x, p, computeInputGradient: false, workspace: workspace)
    }

    /// dW[OC × K] += dY[OC × P] · colᵀ[P × K];  db += Σ_P dY;  dcol[K × P] = Wᵀ[K × OC] · dY;  dx = col2im(dcol).
    private func backward(_ dy: Tensor, input x: Tensor, _ p: Parameters, computeInputGradient: Bool,
                          workspace: ConvWorkspace?) -> Tensor? {
        let g = geometry(x.shape)
        precondition(dy.shape == [g.n, outChannels, g.oh, g.ow], "Conv2d.backward: dy \(dy.shape) for input \(x.shape)")
        let ws = workspace ?? .forCurrentThread
        let group = imagesPerGEMM(batch: g.n, plane: g.outPlane)
        let P = g.outPlane, K = g.kdim, OC = outChannels
        let w = UnsafePointer(p.value(weight)), dw = p.grad(weight)
        let db = bias.map { p.grad($0) }
        if usesDirect(g) {
            var dx: Tensor? = computeInputGradient ? Tensor(shape: x.shape, unsafeUninitialized: { _ in }) : nil
            x.withUnsafeBufferPointer { xb in
                dy.withUnsafeBufferPointer { dyb in
                    withOptionalMutablePointer(&dx) {
                        backwardDirect(g, x: xb.baseAddress!, dy: dyb.baseAddress!, dx: $0, p, workspace: ws)
                    }
                }
            }
            return dx
        }
        // With Winograd the input gradient is a convolution of dy of its own, after the parameter gradients.
        let winogradInput = computeInputGradient && usesWinograd
        var dx: Tensor? = computeInputGradient && !winogradInput ? Tensor(shape: x.shape) : nil  // zeroed: col2im accumulates
        if usesImageParallel {
            x.withUnsafeBufferPointer { xb in
                dy.withUnsafeBufferPointer { dyb in
                    withOptionalMutablePointer(&dx) {
                        backwardImageParallel(g, x: xb.baseAddress!, dy: dyb.baseAddress!, dx: $0, p, workspace: ws)
                    }
                }
            }
            return dx
        }
        x.withUnsafeBufferPointer { xb in
            dy.withUnsafeBufferPointer { dyb in
                let x = xb.baseAddress!, dyp = dyb.baseAddress!
                var n0 = 0
                while n0 < g.n {
                    let count = min(group, g.n - n0)
                    let cols = count * P
                    // dY for this group as one OC × cols matrix.
                    let dY: UnsafePointer<Float>
                    if count == 1 { dY = dyp + n0 * OC * P } else {
                        let buf = ws.buffer(1, count: OC * cols)
                        for j in 0..<count {
                            for oc in 0..<OC {
                                (buf + oc * cols + j * P).update(from: dyp + ((n0 + j) * OC + oc) * P, count: P)
                            }
                        }
                        dY = UnsafePointer(buf)
                    }
                    // The forward columns, recomputed (cheaper in memory than caching them per layer).
                    let col: UnsafePointer<Float>
                    if count == 1 && g.isDirect { col = x + n0 * g.inImage } else {
                        let buf = ws.buffer(0, count: K * cols)
                        im2col(g, x: x + n0 * g.inImage, images: count, imageStride: g.inImage, col: buf)
                        col = UnsafePointer(buf)
                    }
                    sgemm(transB: true, m: OC, n: K, k: cols, a: dY, b: col, beta: 1, c: dw)
                    if let db {
                        for oc in 0..<OC { db[oc] += Kernels.sum(cols, dY + oc * cols) }
                    }
                    if computeInputGradient && !winogradInput {
                        dx!.withUnsafeMutableBufferPointer { dxb in
                            let dxg = dxb.baseAddress! + n0 * g.inImage
                            if count == 1 && g.isDirect {
                                sgemm(transA: true, m: K, n: P, k: OC, a: w, b: dY, c: dxg)
                            } else {
                                let dcol = ws.buffer(2, count: K * cols)
                                sgemm(transA: true, m: K, n: cols, k: OC, a: w, b: dY, c: dcol)
                                col2im(g, dcol: dcol, images: count, imageStride: g.inImage, dx: dxg)
                            }
                        }
                    }
                    n0 += count
                }
            }
        }
        return winogradInput ? inputGradientWinograd(dy, p, ws) : dx
    }

    // MARK: Batching heuristic

    /// Images whose columns share one GEMM. Large planes (≥ 1024 outputs) go one image at a time (the GEMM
    /// is already wide, and pointwise ones then need no copy at all); small planes are grouped until the
    /// GEMM has ~`targetColumns` columns, which keeps OpenBLAS efficient on 7×7 / 14×14 maps, while the
    /// im2col buffer stays under ~64 MB.
    public func imagesPerGEMM(batch: Int, plane: Int) -> Int {
        if let o = imagesPerGEMMOverride { return max(1, min(o, batch)) }
        if plane >= Conv2d.groupingPlaneLimit { return 1 }
        let byColumns = (Conv2d.targetColumns + plane - 1) / plane
        let byMemory = max(1, (16 << 20) / max(1, inChannels * kernelSize * kernelSize * plane))
        return max(1, min(batch, byColumns, byMemory))
    }

    /// Output planes at least this big are computed one image per GEMM.
    static let groupingPlaneLimit = 1024
    /// Columns aimed for when grouping small planes.
    static let targetColumns = 1024

    // MARK: Geometry, im2col, col2im

    struct Geometry {
        let n, c, h, w, oh, ow, k, stride, pad: Int
        var inPlane: Int { h * w }
        var inImage: Int { c * h * w }
        var outPlane: Int { oh * ow }
        /// GEMM inner dimension C·KH·KW.
        var kdim: Int { c * k * k }
        /// 1×1, stride 1, no padding: the input planes already are the GEMM's right-hand matrix.
        var isDirect: Bool { k == 1 && stride == 1 && pad == 0 }
    }

    func geometry(_ shape: [Int]) -> Geometry {
        precondition(shape.count == 4 && shape[1] == inChannels,
                     "Conv2d expects N×\(inChannels)×H×W, got \(shape)")
        let (oh, ow) = outputSize(height: shape[2], width: shape[3])
        precondition(oh > 0 && ow > 0, "Conv2d: input \(shape) too small for kernel \(kernelSize), padding \(padding)")
        return Geometry(n: shape[0], c: shape[1], h: shape[2], w: shape[3], oh: oh, ow: ow,
                        k: kernelSize, stride: stride, pad: padding)
    }

    /// Output columns `ow` whose input column `ow·stride − pad + kw` lies inside `0..<w`.
    @inline(__always)
    static func validColumns(_ g: Geometry, kw: Int) -> Range<Int> {
        let off = kw - g.pad                       // input column of ow = 0
        let lo = off >= 0 ? 0 : (-off + g.stride - 1) / g.stride
        let last = g.w - 1 - off                   // need ow·stride ≤ last
        let hi = last < 0 ? 0 : min(g.ow, last / g.stride + 1)
        return lo..<max(lo, hi)
    }

    /// Writes the columns of `images` consecutive images (`imageStride` floats apart) into
    /// `col[C·KH·KW × images·P]`: row `(c·KH + kh)·KW + kw`, column `j·P + oh·OW + ow` holds
    /// `x[j][c][oh·s − pad + kh][ow·s − pad + kw]` (0 outside the image).
    func im2col(_ g: Geometry, x: UnsafePointer<Float>, images: Int, imageStride: Int, col: UnsafeMutablePointer<Float>) {
        let P = g.outPlane, ld = images * P, rows = g.kdim
        if g.isDirect {
            // Plain gather of whole planes.
            for j in 0..<images {
                for c in 0..<g.c { (col + c * ld + j * P).update(from: x + j * imageStride + c * P, count: P) }
            }
            return
        }
        let work = rows * ld
        parallelFor(rows * images, minChunk: work >= 1 << 16 ? max(1, (rows * images) / 64) : Int.max) { item in
            let r = item % rows, j = item / rows
            let c = r / (g.k * g.k), kh = (r / g.k) % g.k, kw = r % g.k
            Conv2d.im2colRow(g, plane: x + j * imageStride + c * g.inPlane, kh: kh, kw: kw, rows: 0..<g.oh,
                             dst: col + r * ld + j * P)
        }
    }

    /// One im2col row restricted to output rows `rows`: `dst[(oh − rows.lowerBound)·OW + ow] =
    /// plane[oh·s − pad + kh][ow·s − pad + kw]`, 0 outside the plane.
    @inline(__always)
    static func im2colRow(_ g: Geometry, plane: UnsafePointer<Float>, kh: Int, kw: Int, rows: Range<Int>,
                          dst: UnsafeMutablePointer<Float>) {
        // Output rows whose input row ih = oh·s − pad + kh lies inside the plane, clipped to `rows`.
        let firstInside = max(0, (g.pad - kh &+ g.stride &- 1) / g.stride)
        let endInside = (g.h &- 1 &+ g.pad - kh) >= 0 ? (g.h &- 1 &+ g.pad - kh) / g.stride &+ 1 : 0
        let ohLo = min(rows.upperBound, max(rows.lowerBound, firstInside))
        let ohHi = max(ohLo, min(rows.upperBound, endInside))
        let base = rows.lowerBound &* g.ow  // dst holds output positions from `base` on
        let d0 = dst - base
        (d0 + base).update(repeating: 0, count: ohLo &* g.ow &- base)
        (d0 + (ohHi &* g.ow)).update(repeating: 0, count: (rows.upperBound - ohHi) &* g.ow)
        if ohLo == ohHi { return }
        let valid = validColumns(g, kw: kw)
        let off = kw &- g.pad
        if g.stride == 1 && g.ow == g.w {
            // "Same" stride-1 convolution: the row is the plane shifted by (kh − pad)·W + (kw − pad), so one
            // contiguous copy (clipped to the plane) and then zeroing the few columns that wrapped around an edge.
            let shift = (kh &- g.pad) &* g.w &+ off
            let lo = max(ohLo &* g.w, -shift), hi = min(ohHi &* g.w, g.inPlane &- shift)
            if hi > lo { (d0 + lo).update(from: plane + (lo &+ shift), count: hi &- lo) }
            if valid.lowerBound > 0 || valid.upperBound < g.ow {
                for oh in ohLo..<ohHi {
                    let d = d0 + (oh &* g.ow)
                    for ow in 0..<valid.lowerBound { d[ow] = 0 }
                    for ow in valid.upperBound..<g.ow { d[ow] = 0 }
                }
            }
            return
        }
        for oh in ohLo..<ohHi {
            let d = d0 + (oh &* g.ow)
            let src = plane + ((oh &* g.stride &- g.pad &+ kh) &* g.w &+ off)
            if valid.lowerBound > 0 { d.update(repeating: 0, count: valid.lowerBound) }
            if g.stride == 1 {
                (d + valid.lowerBound).update(from: src + valid.lowerBound, count: valid.count)
            } else if g.stride == 2 {
                // Every other element: 16 loaded, the 8 even lanes kept (a shuffle, not a gather). A vector
                // may only read inside the input row: off + 2·ow + 15 ≤ W − 1.
                var ow = valid.lowerBound
                while ow &+ 8 <= valid.upperBound && off &+ 2 &* ow &+ 16 <= g.w {
                    let v = UnsafeRawPointer(src + (2 &* ow)).loadUnaligned(as: SIMD16<Float>.self)
                    UnsafeMutableRawPointer(d + ow).storeBytes(of: v.evenHalf, as: SIMD8<Float>.self)
                    ow &+= 8
                }
                while ow < valid.upperBound { d[ow] = src[2 &* ow]; ow &+= 1 }
            } else {
                let s = g.stride
                for ow in valid { d[ow] = src[ow &* s] }
            }
            if valid.upperBound < g.ow { (d + valid.upperBound).update(repeating: 0, count: g.ow &- valid.upperBound) }
        }
    }

    /// The adjoint of `im2col`: adds every column entry back onto the input position it was read from.
    /// `dx` must be initialised (usually zero); work is split by (image, channel), so writes never collide.
    func col2im(_ g: Geometry, dcol: UnsafePointer<Float>, images: Int, imageStride: Int, dx: UnsafeMutablePointer<Float>) {
        let P = g.outPlane, ld = images * P
        let planes = images * g.c
        let work = g.kdim * ld
        parallelFor(planes, minChunk: work >= 1 << 16 ? 1 : Int.max) { item in
            let c = item % g.c, j = item / g.c
            let plane = dx + j * imageStride + c * g.inPlane
            for kh in 0..<g.k {
                for kw in 0..<g.k {
                    let r = (c * g.k + kh) * g.k + kw
                    let srcRow = dcol + r * ld + j * P
                    let valid = Conv2d.validColumns(g, kw: kw)
                    if valid.isEmpty { continue }
                    let off = kw - g.pad
                    for oh in 0..<g.oh {
                        let ih = oh * g.stride - g.pad + kh
                        if ih < 0 || ih >= g.h { continue }
                        let dst = plane + ih * g.w + off
                        let src = srcRow + oh * g.ow
                        if g.stride == 1 {
                            for ow in valid { dst[ow] += src[ow] }
                        } else {
                            let s = g.stride
                            for ow in valid { dst[ow * s] += src[ow] }
                        }
                    }
                }
            }
        }
    }

    /// Copies a GEMM result `from[OC × ldFrom]` (images side by side, `plane` columns each) into
    /// `to[images × OC × plane]`, adding the bias and applying ReLU on the way. Works in place when
    /// `images == 1` and `from == to`.
    static func epilogue(channels: Int, plane: Int, images: Int, from: UnsafePointer<Float>, ldFrom: Int,
                         to: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?, relu: Bool) {
        let total = channels * plane * images
        parallelFor(images * channels, minChunk: total >= 1 << 17 ? 1 : Int.max) { item in
            let j = item / channels, oc = item % channels
            let src = from + oc * ldFrom + j * plane
            let dst = to + (j * channels + oc) * plane
            let b = bias?[oc] ?? 0
            switch (relu, bias != nil) {
            case (false, false): if src != UnsafePointer(dst) { dst.update(from: src, count: plane) }
            case (false, true): for i in 0..<plane { dst[i] = src[i] + b }
            case (true, _): for i in 0..<plane { dst[i] = max(src[i] + b, 0) }
            }
        }
    }
}
