import CKernels
import TensorCore

// MARK: - Direct 3×3 convolution for few output channels
//
// A 3×3 convolution with a handful of output channels (a frame decoder's 16 → 4 at 32×32) gives a GEMM of
// M = OC rows: the im2col matrix, nine times the input, is written, packed and read again for four multiply–adds
// per element. The direct kernels (CKernels' ck_conv3x3_*) read each padded input plane from L1 instead, with
// every load feeding several output channels. Images are split over the workers; each keeps its own weight
// gradient, summed at the end, as in the image-parallel path.

extension Conv2d {
    /// Whether `forward` and `backward` run the direct kernels for input geometry `g`: 3×3, stride 1,
    /// padding 1, a width that is a multiple of 8, and (unless `directOverride` decides) at most 8 output
    /// channels.
    func usesDirect(_ g: Geometry) -> Bool {
        guard kernelSize == 3 && stride == 1 && padding == 1 && g.w % 8 == 0 else { return false }
        return directOverride ?? (outChannels <= Conv2d.directMaxOutputChannels)
    }

    /// Whether an `N×C×H×W` input of this shape goes through the direct kernels (see `usesDirect`).
    public func usesDirectKernels(inputShape: [Int]) -> Bool { usesDirect(geometry(inputShape)) }

    /// Most output channels for which the direct kernels are chosen automatically.
    static let directMaxOutputChannels = 8

    /// y = conv(x) (+ bias, then ReLU when `relu`), images split over the workers.
    func forwardDirect(_ g: Geometry, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                       weight w: UnsafePointer<Float>, bias b: UnsafePointer<Float>?, relu: Bool, workspace ws: ConvWorkspace) {
        let OC = outChannels, P = g.outPlane
        let workers = max(1, min(Threads.count, g.n))
        let padded = (0..<workers).map { ws.buffer(3 + $0, count: g.c * (g.h + 2) * (g.w + 2)) }
        parallelFor(workers) { worker in
            let lo = g.n * worker / workers, hi = g.n * (worker + 1) / workers
            if lo == hi { return }
            let out = y + lo * OC * P
            ck_conv3x3_forward(Int32(hi - lo), Int32(g.c), Int32(OC), Int32(g.h), Int32(g.w), x + lo * g.inImage, w, b,
                               out, padded[worker])
            if relu { Kernels.relu((hi - lo) * OC * P, out, out) }
        }
    }

    /// dW += Σ dy ⋆ x, db += Σ dy, and (when `dx` is given) dx = the transposed convolution of dy: a direct
    /// convolution of dy with the weights flipped in both spatial axes and in/out channels swapped,
    /// W̃[c][o][2−kh][2−kw] = W[o][c][kh][kw].
    func backwardDirect(_ g: Geometry, x: UnsafePointer<Float>, dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>?,
                        _ p: Parameters, workspace ws: ConvWorkspace) {
        let OC = outChannels, C = g.c, P = g.outPlane
        let workers = max(1, min(Threads.count, g.n))
        let w = UnsafePointer(p.value(weight))
        let flipped = ws.buffer(2, count: C * OC * 9)
        for o in 0..<OC {
            for c in 0..<C {
                for t in 0..<9 { flipped[(c * OC + o) * 9 + 8 - t] = w[(o * C + c) * 9 + t] }
            }
        }
        let padded = (0..<workers).map { ws.buffer(3 + $0, count: max(C, OC) * (g.h + 2) * (g.w + 2)) }
        let gradCount = OC * C * 9 + OC
        let grads = UnsafeMutablePointer<Float>.allocate(capacity: workers * gradCount)
        grads.initialize(repeating: 0, count: workers * gradCount)
        defer { grads.deallocate() }
        let withBias = bias != nil
        parallelFor(workers) { worker in
            let lo = g.n * worker / workers, hi = g.n * (worker + 1) / workers
            if lo == hi { return }
            let dw = grads + worker * gradCount
            ck_conv3x3_weight_gradient(Int32(hi - lo), Int32(C), Int32(OC), Int32(g.h), Int32(g.w), x + lo * g.inImage,
                                       dy + lo * OC * P, dw, withBias ? dw + OC * C * 9 : nil, padded[worker])
            if let dx {
                ck_conv3x3_forward(Int32(hi - lo), Int32(OC), Int32(C), Int32(g.h), Int32(g.w), dy + lo * OC * P,
                                   flipped, nil, dx + lo * g.inImage, padded[worker])
            }
        }
        for worker in 0..<workers {
            let local = grads + worker * gradCount
            Kernels.axpy(OC * C * 9, 1, local, p.grad(weight))
            if let bias { Kernels.axpy(OC, 1, local + OC * C * 9, p.grad(bias)) }
        }
    }
}
