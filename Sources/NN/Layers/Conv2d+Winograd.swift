import TensorCore

/// Winograd's minimal filtering F(2×2, 3×3) for 3×3, stride-1, padding-1 convolutions (Lavin & Gray 2016),
/// forward and input gradient: each 2×2 block of outputs ("tile") comes from a 4×4 input patch as
///
///     Y = Aᵀ [ Σ_c (G g_c Gᵀ) ⊙ (Bᵀ d_c B) ] A
///
/// which costs 16 multiplies per input channel where im2col's GEMM spends 36. The sum over channels of the
/// elementwise products is, for each of the 16 positions ξ of the 4×4 transformed tile, one GEMM:
///
///     M[ξ] (OC × T) = U[ξ] (OC × C) · V[ξ] (C × T)       T = N·⌈H/2⌉·⌈W/2⌉ tiles of N images
///
/// with U = G g Gᵀ (`winogradWeights`: once per fold at inference, every call in training) and V = Bᵀ d B
/// the transformed input.
/// The transformed input is 4× the input (im2col's columns are 9×), and with the multiplies cut by 2.25×
/// the small-channel 3×3 stages of ResNet-18 and the compact net gain the most. The 16 GEMMs are
/// independent and split over the threads, each on single-threaded BLAS; a batch goes through in passes of
/// as many images as keep V and M within `winogradBudget`.
///
///     Bᵀ = | 1  0 −1  0 |     G = | 1    0    0  |     Aᵀ = | 1  1  1  0 |
///          | 0  1  1  0 |         | ½    ½    ½  |          | 0  1 −1 −1 |
///          | 0 −1  1  0 |         | ½   −½    ½  |
///          | 0  1  0 −1 |         | 0    0    1  |
///
/// Rounding differs from the direct sum only at the level of float epsilon times the transforms' small
/// constants (checked against im2col and, through the encoders, against PyTorch).
extension Conv2d {
    /// True for the convolutions `forwardWinograd` computes: 3×3, stride 1, padding 1.
    public var supportsWinograd: Bool { kernelSize == 3 && stride == 1 && padding == 1 }

    /// Floats of the transformed weight: 16 × OC × C.
    public var winogradWeightCount: Int { 16 * outChannels * inChannels }

    /// U[ξ][oc][c] = (G · w[oc][c] · Gᵀ)[ξ] for output channel `oc` only: `w` is that channel's C×3×3 weights,
    /// `u` the whole 16×OC×C buffer.
    public func winogradWeights(outChannel oc: Int, weights w: UnsafePointer<Float>, into u: UnsafeMutablePointer<Float>) {
        let (C, OC) = (inChannels, outChannels)
        for c in 0..<C {
            let g = w + c * 9
            Conv2d.winogradFilter({ g[3 * $0 + $1] }, into: u + oc * C + c, step: OC * C)
        }
    }

    /// The 16 values (G·g·Gᵀ)[ξ] of one 3×3 filter (`g(i, j)`: row i, column j) at `u[ξ·step]`.
    @inline(__always)
    static func winogradFilter(_ g: (Int, Int) -> Float, into u: UnsafeMutablePointer<Float>, step: Int) {
        for i in 0..<4 {
            // Row i of t = G·g (3 values), then that row times Gᵀ.
            let (a, b, d): (Float, Float, Float)
            switch i {
            case 0: (a, b, d) = (g(0, 0), g(0, 1), g(0, 2))
            case 1: (a, b, d) = (0.5 * (g(0, 0) + g(1, 0) + g(2, 0)), 0.5 * (g(0, 1) + g(1, 1) + g(2, 1)),
                                 0.5 * (g(0, 2) + g(1, 2) + g(2, 2)))
            case 2: (a, b, d) = (0.5 * (g(0, 0) - g(1, 0) + g(2, 0)), 0.5 * (g(0, 1) - g(1, 1) + g(2, 1)),
                                 0.5 * (g(0, 2) - g(1, 2) + g(2, 2)))
            default: (a, b, d) = (g(2, 0), g(2, 1), g(2, 2))
            }
            let row = u + 4 * i * step
            row[0] = a
            row[step] = 0.5 * (a + b + d)
            row[2 * step] = 0.5 * (a - b + d)
            row[3 * step] = d
        }
    }

    /// True when forward (and the input gradient) of this layer run by Winograd: it `supportsWinograd` and
    /// `winogradOverride` does not forbid it.
    var usesWinograd: Bool { supportsWinograd && winogradOverride != false }

    /// The transformed weight of `p`'s current values in workspace slot 2 (training: weights change every step;
    /// transforming them costs ~1/(9·H·W) of the convolution).
    func transformedWeight(_ p: Parameters, _ ws: ConvWorkspace) -> UnsafePointer<Float> {
        let u = ws.buffer(2, count: winogradWeightCount), w = UnsafePointer(p.value(weight))
        for oc in 0..<outChannels { winogradWeights(outChannel: oc, weights: w + oc * inChannels * 9, into: u) }
        return UnsafePointer(u)
    }

    /// dx for dy by Winograd: the input gradient of a 3×3, stride-1, padding-1 convolution is the same kind of
    /// convolution of dy (OC channels in, C out) with each filter turned by 180°, W'[c][oc] = rot180(W[oc][c]).
    func inputGradientWinograd(_ dy: Tensor, _ p: Parameters, _ ws: ConvWorkspace) -> Tensor {
        let (C, OC) = (inChannels, outChannels)
        let u = ws.buffer(2, count: winogradWeightCount), w = UnsafePointer(p.value(weight))
        for oc in 0..<OC {
            for c in 0..<C {
                let g = w + (oc * C + c) * 9
                Conv2d.winogradFilter({ g[3 * (2 - $0) + (2 - $1)] }, into: u + c * OC + oc, step: C * OC)
            }
        }
        return Conv2d.winogradConvolve(dy, outChannels: C, u: UnsafePointer(u), bias: nil, relu: false, workspace: ws)
    }

    /// `x: N×C×H×W → N×OC×H×W` from the transformed weight `u` (16×OC×C, see `winogradWeights`), plus `bias`,
    /// then ReLU when `relu`. Same result as `forward(_:weight:bias:relu:workspace:)` up to rounding.
    public func forwardWinograd(_ x: Tensor, transformedWeight u: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                                relu: Bool = false, workspace: ConvWorkspace? = nil) -> Tensor {
        precondition(supportsWinograd, "Conv2d.forwardWinograd needs a 3×3, stride-1, padding-1 convolution")
        precondition(x.rank == 4 && x.shape[1] == inChannels, "Conv2d expects N×\(inChannels)×H×W, got \(x.shape)")
        return Conv2d.winogradConvolve(x, outChannels: outChannels, u: u, bias: bias, relu: relu,
                                       workspace: workspace ?? .forCurrentThread)
    }

    /// The 3×3 / stride 1 / padding 1 convolution of `x` (N×C×H×W) into `outChannels` planes from the transformed
    /// weight `u` (16 × outChannels × C).
    static func winogradConvolve(_ x: Tensor, outChannels OC: Int, u: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                                 relu: Bool, workspace ws: ConvWorkspace) -> Tensor {
        let (N, C, H, W) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let perImage = ((H + 1) / 2) * ((W + 1) / 2)
        // Images per pass, so that V (16·C floats per tile) and M (16·OC) stay within `winogradBudget`.
        let group = max(1, min(N, winogradBudget / (16 * (C + OC) * perImage)))
        var y = Tensor(shape: [N, OC, H, W], unsafeUninitialized: { _ in })
        x.withUnsafeBufferPointer { xb in
            y.withUnsafeMutableBufferPointer { yb in
                for n0 in Swift.stride(from: 0, to: N, by: group) {
                    winogradPass(inChannels: C, outChannels: OC, height: H, width: W, images: min(group, N - n0),
                                 x: xb.baseAddress! + n0 * C * H * W, y: yb.baseAddress! + n0 * OC * H * W, u: u,
                                 bias: bias, relu: relu, workspace: ws)
                }
            }
        }
        return y
    }

    /// Floats of V and M together in one pass of `forwardWinograd` (16 MB).
    static let winogradBudget = 4 << 20

    /// `winogradConvolve` on `N` consecutive images starting at `x` (C×H×W each), into `y` (OC×H×W each).
    private static func winogradPass(inChannels C: Int, outChannels OC: Int, height H: Int, width W: Int, images N: Int,
                                     x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, u: UnsafePointer<Float>,
                                     bias: UnsafePointer<Float>?, relu: Bool, workspace ws: ConvWorkspace) {
        let (tilesH, tilesW) = ((H + 1) / 2, (W + 1) / 2)
        let perImage = tilesH * tilesW, T = N * perImage
        let v = ws.buffer(0, count: 16 * C * T), m = ws.buffer(1, count: 16 * OC * T)
        let big = 16 * C * T >= 1 << 15
        let (vStride, mStride) = (C * T, OC * T)  // floats between consecutive ξ in V and in M
        // V[ξ][c][t] = (Bᵀ d B)[ξ] for the 4×4 patch d of tile t: input rows 2·ty − 1 … 2·ty + 2 and
        // columns 2·tx − 1 … 2·tx + 2, 0 outside the plane. Per tile row: the four input rows, zero padded
        // (`q[k][j]` is column j − 1), combined by Bᵀ in place, then each tile's four columns by B.
        let wp = 2 * tilesW + 2
        parallelFor(N * C, minChunk: big ? 1 : Int.max) { item in
            let n = item / C, c = item % C
            let plane = x + (n &* C &+ c) &* H &* W
            let out = v + (c &* T &+ n &* perImage)
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 4 * wp) { buffer in
                let q = buffer.baseAddress!
                for ty in 0..<tilesH {
                    for k in 0..<4 {
                        let row = 2 &* ty &- 1 &+ k, qk = q + k &* wp
                        if row < 0 || row >= H { qk.update(repeating: 0, count: wp); continue }
                        qk[0] = 0
                        (qk + 1).update(from: plane + (row &* W), count: W)
                        (qk + 1 + W).update(repeating: 0, count: wp &- 1 &- W)
                    }
                    let (q0, q1, q2, q3) = (q, q + wp, q + 2 &* wp, q + 3 &* wp)
                    for j in 0..<wp {
                        let (p0, p1, p2, p3) = (q0[j], q1[j], q2[j], q3[j])
                        q0[j] = p0 - p2; q1[j] = p1 + p2; q2[j] = p2 - p1; q3[j] = p1 - p3
                    }
                    for i in 0..<4 {
                        let qi = q + i &* wp, o = out + (4 &* i &* vStride &+ ty &* tilesW)
                        for tx in 0..<tilesW {
                            let t2 = 2 &* tx
                            let (a, b, c, d) = (qi[t2], qi[t2 &+ 1], qi[t2 &+ 2], qi[t2 &+ 3])
                            o[tx] = a - c
                            o[vStride &+ tx] = b + c
                            o[2 &* vStride &+ tx] = c - b
                            o[3 &* vStride &+ tx] = b - d
                        }
                    }
                }
            }
        }
        // M[ξ] = U[ξ] · V[ξ], the 16 GEMMs spread over the threads.
        Threads.withSerialBLAS {
            parallelFor(16, minChunk: big ? 1 : Int.max) { xi in
                sgemm(m: OC, n: T, k: C, a: u + xi * OC * C, b: v + xi * vStride, c: m + xi * mStride)
            }
        }
        // Y = Aᵀ M A per tile (M·A along each row of the 4×4 tile, then Aᵀ down the rows), plus bias and ReLU.
        parallelFor(N * OC, minChunk: big ? 1 : Int.max) { item in
            let n = item / OC, oc = item % OC
            let plane = y + (n &* OC &+ oc) &* H &* W
            let b = bias?[oc] ?? 0
            for ty in 0..<tilesH {
                let src = m + (oc &* T &+ n &* perImage &+ ty &* tilesW)
                let top = plane + (2 &* ty &* W), bottomInside = 2 &* ty &+ 1 < H
                for tx in 0..<tilesW {
                    @inline(__always) func rowPair(_ i: Int) -> (Float, Float) {
                        let r = src + (4 &* i &* mStride &+ tx)
                        let (m0, m1, m2, m3) = (r[0], r[mStride], r[2 &* mStride], r[3 &* mStride])
                        return (m0 + m1 + m2, m1 - m2 - m3)
                    }
                    let (s0, s1) = rowPair(0), (s2, s3) = rowPair(1), (s4, s5) = rowPair(2), (s6, s7) = rowPair(3)
                    var y00 = s0 + s2 + s4 + b, y01 = s1 + s3 + s5 + b
                    var y10 = s2 - s4 - s6 + b, y11 = s3 - s5 - s7 + b
                    if relu { y00 = max(y00, 0); y01 = max(y01, 0); y10 = max(y10, 0); y11 = max(y11, 0) }
                    let col = 2 &* tx
                    top[col] = y00
                    if col &+ 1 < W { top[col &+ 1] = y01 }
                    if bottomInside {
                        top[W &+ col] = y10
                        if col &+ 1 < W { top[W &+ col &+ 1] = y11 }
                    }
                }
            }
        }
    }
}
