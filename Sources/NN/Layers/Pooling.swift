import TensorCore

// Pooling layers over N×C×H×W tensors. Each (image, channel) plane is independent, so every pass runs
// planes in parallel (`parallelFor`, no BLAS inside) once the tensor is big enough to pay for the dispatch.

/// Runs `body(plane)` for `planes` planes of `work` total elements, in parallel when it is worth it.
@inline(__always)
private func forEachPlane(_ planes: Int, work: Int, _ body: (Int) -> Void) {
    parallelFor(planes, minChunk: work >= 1 << 15 ? 1 : Int.max, body)
}

/// Checks an N×C×H×W input and returns its dimensions.
private func planeShape(_ x: Tensor, _ layer: String) -> (n: Int, c: Int, h: Int, w: Int) {
    precondition(x.rank == 4, "\(layer) expects N×C×H×W, got \(x.shape)")
    return (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
}

/// Max pooling (PyTorch `nn.MaxPool2d`, `dilation=1`, `ceil_mode=False`).
///
/// Padding is −∞ (padded positions never win, so all-negative borders are not clamped to 0), the output size
/// is `floor((H + 2·padding − kernel) / stride) + 1`, the first maximum in a window wins ties and NaN
/// propagates, as in PyTorch's CPU kernel.
public struct MaxPool2d {
    /// Side of the square pooling window.
    public let kernelSize: Int
    /// Step between windows, both directions.
    public let stride: Int
    /// −∞ padding on each side, at most `kernelSize / 2`.
    public let padding: Int

    /// `stride` defaults to `kernelSize`, like PyTorch.
    public init(kernelSize: Int, stride: Int? = nil, padding: Int = 0) {
        let stride = stride ?? kernelSize
        precondition(kernelSize > 0 && stride > 0 && padding >= 0 && padding <= kernelSize / 2,
                     "MaxPool2d: padding must be at most half the kernel size (PyTorch's rule)")
        self.kernelSize = kernelSize
        self.stride = stride
        self.padding = padding
    }

    /// Output plane size `(OH, OW)` for an `H×W` input plane (PyTorch's floor formula).
    public func outputSize(height: Int, width: Int) -> (height: Int, width: Int) {
        ((height + 2 * padding - kernelSize) / stride + 1, (width + 2 * padding - kernelSize) / stride + 1)
    }

    /// The argmax of every output: its flat index `h·W + w` within its input plane (PyTorch's `indices`).
    public struct Cache {
        /// The forward input's `N×C×H×W` shape, the shape of dx.
        public let inputShape: [Int]
        /// N·C·OH·OW: per output, the flat index of its maximum within its input plane.
        public let indices: [Int32]
    }

    /// `x: N×C×H×W → N×C×OH×OW`, with the winning positions for backward.
    public func forward(_ x: Tensor) -> (y: Tensor, cache: Cache) {
        let (n, c, h, w) = planeShape(x, "MaxPool2d")
        let (oh, ow) = outputSize(height: h, width: w)
        precondition(oh > 0 && ow > 0, "MaxPool2d: input \(x.shape) too small")
        let k = kernelSize, s = stride, pad = padding
        let inPlane = h * w, outPlane = oh * ow
        var indices = [Int32](repeating: 0, count: n * c * outPlane)
        let y = Tensor(shape: [n, c, oh, ow]) { yb in
            x.withUnsafeBufferPointer { xb in
                indices.withUnsafeMutableBufferPointer { ib in
                    let x = xb.baseAddress!, y = yb.baseAddress!, idx = ib.baseAddress!
                    forEachPlane(n * c, work: xb.count) { plane in
                        let src = x + plane * inPlane, dst = y + plane * outPlane, dstIdx = idx + plane * outPlane
                        for i in 0..<oh {
                            let h0 = i * s - pad, hLo = max(h0, 0), hHi = min(h0 + k, h)
                            for j in 0..<ow {
                                let w0 = j * s - pad, wLo = max(w0, 0), wHi = min(w0 + k, w)
                                var best = -Float.infinity
                                var bestIndex = hLo * w + wLo
                                for hh in hLo..<hHi {
                                    let row = src + hh * w
                                    for ww in wLo..<wHi {
                                        let v = row[ww]
                                        if v > best || v.isNaN { best = v; bestIndex = hh * w + ww }
                                    }
                                }
                                dst[i * ow + j] = best
                                dstIdx[i * ow + j] = Int32(bestIndex)
                            }
                        }
                    }
                }
            }
        }
        return (y, Cache(inputShape: x.shape, indices: indices))
    }

    /// `dy: N×C×OH×OW → dx: N×C×H×W`: each output's gradient goes to its argmax (summed where windows overlap).
    public func backward(_ dy: Tensor, cache: Cache) -> Tensor {
        precondition(dy.count == cache.indices.count, "MaxPool2d.backward: dy \(dy.shape) does not match the cache")
        let inPlane = cache.inputShape[2] * cache.inputShape[3]
        let planes = cache.inputShape[0] * cache.inputShape[1]
        let outPlane = dy.count / max(1, planes)
        var dx = Tensor(shape: cache.inputShape)
        dx.withUnsafeMutableBufferPointer { dxb in
            dy.withUnsafeBufferPointer { dyb in
                cache.indices.withUnsafeBufferPointer { ib in
                    let dx = dxb.baseAddress!, dy = dyb.baseAddress!, idx = ib.baseAddress!
                    forEachPlane(planes, work: dxb.count) { plane in
                        let d = dx + plane * inPlane, g = dy + plane * outPlane, ix = idx + plane * outPlane
                        for o in 0..<outPlane { d[Int(ix[o])] += g[o] }
                    }
                }
            }
        }
        return dx
    }
}

/// Average pooling (PyTorch `nn.AvgPool2d`, `ceil_mode=False`, no `divisor_override`).
///
/// With `countIncludePad` (PyTorch's default) every full window divides by `kernel²`, zero padding included;
/// otherwise by the number of in-image elements.
public struct AvgPool2d {
    /// Side of the square pooling window.
    public let kernelSize: Int
    /// Step between windows, both directions.
    public let stride: Int
    /// Zero padding on each side, at most `kernelSize / 2`.
    public let padding: Int
    /// Whether padded positions count in a window's divisor (PyTorch's `count_include_pad`).
    public let countIncludePad: Bool

    /// `stride` defaults to `kernelSize`, like PyTorch.
    public init(kernelSize: Int, stride: Int? = nil, padding: Int = 0, countIncludePad: Bool = true) {
        let stride = stride ?? kernelSize
        precondition(kernelSize > 0 && stride > 0 && padding >= 0 && padding <= kernelSize / 2,
                     "AvgPool2d: padding must be at most half the kernel size (PyTorch's rule)")
        self.kernelSize = kernelSize
        self.stride = stride
        self.padding = padding
        self.countIncludePad = countIncludePad
    }

    /// Output plane size `(OH, OW)` for an `H×W` input plane (PyTorch's floor formula).
    public func outputSize(height: Int, width: Int) -> (height: Int, width: Int) {
        ((height + 2 * padding - kernelSize) / stride + 1, (width + 2 * padding - kernelSize) / stride + 1)
    }

    /// Window `[lo, hi)` of output `i` along an axis of length `size`, and its divisor contribution
    /// (PyTorch: the window clipped to the *padded* extent counts, then it is clipped to the image).
    @inline(__always)
    private func window(_ i: Int, size: Int) -> (lo: Int, hi: Int, padded: Int) {
        let start = i * stride - padding
        let end = min(start + kernelSize, size + padding)
        return (max(start, 0), min(end, size), end - start)
    }

    /// `x: N×C×H×W → N×C×OH×OW`.
    public func forward(_ x: Tensor) -> Tensor {
        let (n, c, h, w) = planeShape(x, "AvgPool2d")
        let (oh, ow) = outputSize(height: h, width: w)
        precondition(oh > 0 && ow > 0, "AvgPool2d: input \(x.shape) too small")
        let inPlane = h * w, outPlane = oh * ow
        return Tensor(shape: [n, c, oh, ow]) { yb in
            x.withUnsafeBufferPointer { xb in
                let x = xb.baseAddress!, y = yb.baseAddress!
                forEachPlane(n * c, work: xb.count) { plane in
                    let src = x + plane * inPlane, dst = y + plane * outPlane
                    for i in 0..<oh {
                        let (hLo, hHi, hPad) = window(i, size: h)
                        for j in 0..<ow {
                            let (wLo, wHi, wPad) = window(j, size: w)
                            var s: Float = 0
                            for hh in hLo..<hHi { for ww in wLo..<wHi { s += src[hh * w + ww] } }
                            let divisor = countIncludePad ? hPad * wPad : (hHi - hLo) * (wHi - wLo)
                            dst[i * ow + j] = s / Float(divisor)
                        }
                    }
                }
            }
        }
    }

    /// `dy: N×C×OH×OW → dx` of `inputShape`: each output's gradient spread evenly (÷ divisor) over its window.
    public func backward(_ dy: Tensor, inputShape: [Int]) -> Tensor {
        let (n, c, h, w) = (inputShape[0], inputShape[1], inputShape[2], inputShape[3])
        let (oh, ow) = outputSize(height: h, width: w)
        precondition(dy.shape == [n, c, oh, ow], "AvgPool2d.backward: dy \(dy.shape) for input \(inputShape)")
        let inPlane = h * w, outPlane = oh * ow
        var dx = Tensor(shape: inputShape)
        dx.withUnsafeMutableBufferPointer { dxb in
            dy.withUnsafeBufferPointer { dyb in
                let dx = dxb.baseAddress!, dy = dyb.baseAddress!
                forEachPlane(n * c, work: dxb.count) { plane in
                    let d = dx + plane * inPlane, g = dy + plane * outPlane
                    for i in 0..<oh {
                        let (hLo, hHi, hPad) = window(i, size: h)
                        for j in 0..<ow {
                            let (wLo, wHi, wPad) = window(j, size: w)
                            let divisor = countIncludePad ? hPad * wPad : (hHi - hLo) * (wHi - wLo)
                            let share = g[i * ow + j] / Float(divisor)
                            for hh in hLo..<hHi { for ww in wLo..<wHi { d[hh * w + ww] += share } }
                        }
                    }
                }
            }
        }
        return dx
    }
}

/// Adaptive average pooling to a fixed output size (PyTorch `nn.AdaptiveAvgPool2d`).
///
/// Output `i` of `out` along an axis of length `in` averages input `[floor(i·in/out), ceil((i+1)·in/out))`.
/// Bins may overlap, and when `out > in` (e.g. 8×8 → 14×14) inputs are repeated: upsampling by averaging.
public struct AdaptiveAvgPool2d {
    /// Output plane height OH, whatever the input height.
    public let outputHeight: Int
    /// Output plane width OW, whatever the input width.
    public let outputWidth: Int

    /// Pools every input plane to `outputHeight × outputWidth`; both must be positive.
    public init(outputHeight: Int, outputWidth: Int) {
        precondition(outputHeight > 0 && outputWidth > 0)
        self.outputHeight = outputHeight
        self.outputWidth = outputWidth
    }

    /// A square output (`AdaptiveAvgPool2d(14)` in PyTorch).
    public init(_ size: Int) { self.init(outputHeight: size, outputWidth: size) }

    /// Input bin `[lo, hi)` of output `i`: PyTorch's `start_index` / `end_index`.
    @inline(__always)
    static func bin(_ i: Int, in size: Int, out: Int) -> Range<Int> {
        (i * size) / out ..< ((i + 1) * size + out - 1) / out
    }

    /// `x: N×C×H×W → N×C×outputHeight×outputWidth`.
    public func forward(_ x: Tensor) -> Tensor {
        let (n, c, h, w) = planeShape(x, "AdaptiveAvgPool2d")
        precondition(h > 0 && w > 0, "AdaptiveAvgPool2d: empty input \(x.shape)")
        let oh = outputHeight, ow = outputWidth
        let inPlane = h * w, outPlane = oh * ow
        return Tensor(shape: [n, c, oh, ow]) { yb in
            x.withUnsafeBufferPointer { xb in
                let x = xb.baseAddress!, y = yb.baseAddress!
                forEachPlane(n * c, work: max(xb.count, yb.count)) { plane in
                    let src = x + plane * inPlane, dst = y + plane * outPlane
                    for i in 0..<oh {
                        let hb = AdaptiveAvgPool2d.bin(i, in: h, out: oh)
                        for j in 0..<ow {
                            let wb = AdaptiveAvgPool2d.bin(j, in: w, out: ow)
                            var s: Float = 0
                            for hh in hb { for ww in wb { s += src[hh * w + ww] } }
                            dst[i * ow + j] = s / Float(hb.count * wb.count)
                        }
                    }
                }
            }
        }
    }

    /// `dy: N×C×outputHeight×outputWidth → dx` of `inputShape`.
    public func backward(_ dy: Tensor, inputShape: [Int]) -> Tensor {
        let (n, c, h, w) = (inputShape[0], inputShape[1], inputShape[2], inputShape[3])
        let oh = outputHeight, ow = outputWidth
        precondition(dy.shape == [n, c, oh, ow], "AdaptiveAvgPool2d.backward: dy \(dy.shape) for input \(inputShape)")
        let inPlane = h * w, outPlane = oh * ow
        var dx = Tensor(shape: inputShape)
        dx.withUnsafeMutableBufferPointer { dxb in
            dy.withUnsafeBufferPointer { dyb in
                let dx = dxb.baseAddress!, dy = dyb.baseAddress!
                forEachPlane(n * c, work: max(dxb.count, dyb.count)) { plane in
                    let d = dx + plane * inPlane, g = dy + plane * outPlane
                    for i in 0..<oh {
                        let hb = AdaptiveAvgPool2d.bin(i, in: h, out: oh)
                        for j in 0..<ow {
                            let wb = AdaptiveAvgPool2d.bin(j, in: w, out: ow)
                            let share = g[i * ow + j] / Float(hb.count * wb.count)
                            for hh in hb { for ww in wb { d[hh * w + ww] += share } }
                        }
                    }
                }
            }
        }
        return dx
    }
}
