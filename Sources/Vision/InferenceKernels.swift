import NN
import TensorCore

/// Kernels for the encoders' hot paths: inference ones keep no caches and make fewer passes over memory than
/// the general layers (which also serve training).
enum InferenceKernels {
    /// Max pooling without argmax indices (PyTorch `MaxPool2d`, padding never wins, floor output size):
    /// per output row, the elementwise maximum of its (up to `k`) input rows, then the maximum over each
    /// window of that row. Planes run in parallel.
    static func maxPool(_ x: Tensor, _ pool: MaxPool2d) -> Tensor {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (oh, ow) = pool.outputSize(height: h, width: w)
        let k = pool.kernelSize, s = pool.stride, pad = pool.padding
        return Tensor(shape: [n, c, oh, ow]) { yb in
            x.withUnsafeBufferPointer { xb in
                let x = xb.baseAddress!, y = yb.baseAddress!
                parallelFor(n * c, minChunk: xb.count >= 1 << 15 ? 1 : Int.max) { plane in
                    let src = x + plane * h * w, dst = y + plane * oh * ow
                    withUnsafeTemporaryAllocation(of: Float.self, capacity: w) { rowMax in
                        let m = rowMax.baseAddress!
                        for i in 0..<oh {
                            let r0 = max(i * s - pad, 0), r1 = min(i * s - pad + k, h)
                            m.update(from: src + r0 * w, count: w)
                            for r in (r0 + 1)..<max(r0 + 1, r1) {
                                let row = src + r * w
                                for j in 0..<w { m[j] = max(m[j], row[j]) }
                            }
                            let out = dst + i * ow
                            for j in 0..<ow {
                                let c0 = max(j * s - pad, 0), c1 = min(j * s - pad + k, w)
                                var v = m[c0]
                                for q in (c0 + 1)..<max(c0 + 1, c1) { v = max(v, m[q]) }
                                out[j] = v
                            }
                        }
                    }
                }
            }
        }
    }

    /// The end of a residual block in one pass: `h = max(h + shortcut + bias[c], 0)` over N×C×H×W, where `bias`
    /// is the sum of the main path's last bias and the downsample's (both left out of their convolutions).
    static func addBiasReLU(_ h: inout Tensor, shortcut: Tensor, bias: UnsafePointer<Float>?, bias2: UnsafePointer<Float>?) {
        precondition(h.shape == shortcut.shape, "residual: main path \(h.shape) vs shortcut \(shortcut.shape)")
        let (n, c) = (h.shape[0], h.shape[1])
        let plane = h.count / max(1, n * c)
        shortcut.withUnsafeBufferPointer { sb in
            h.withUnsafeMutableBufferPointer { hb in
                let s = sb.baseAddress!, o = hb.baseAddress!
                parallelFor(n * c, minChunk: hb.count >= 1 << 16 ? 1 : Int.max) { p in
                    let ch = p % c
                    let b = (bias?[ch] ?? 0) + (bias2?[ch] ?? 0)
                    let op = o + p * plane, sp = s + p * plane
                    for i in 0..<plane { op[i] = max(op[i] + sp[i] + b, 0) }
                }
            }
        }
    }
}
