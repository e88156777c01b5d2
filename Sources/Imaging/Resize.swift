/// Pillow-exact bilinear resizing: `Image.resize((width, height), Image.BILINEAR)`.
///
/// Pillow's resample (libImaging/Resample.c) is a separable, *antialiased* triangle filter: when
/// shrinking, the filter's support widens with the scale factor so every input pixel contributes
/// (unlike textbook bilinear, which samples 2×2 neighbours). It runs as two passes, each
/// accumulating 8-bit samples times 22-bit fixed-point weights in an Int32 and rounding back to
/// UInt8 between the passes, so the pass order changes the result by ±1 here and there. Pillow 13
/// goes horizontal first (over only the rows the vertical pass will read), except when the height
/// shrinks by more than twice as many pixels as the width, where it goes vertical first (Pillow
/// PR #9549; older Pillow always went horizontal first). This file reproduces that arithmetic step
/// for step (the coefficients are computed in Double exactly as Pillow's C does), so the output is
/// identical to Pillow 13's, not just close.

/// Fixed-point weights for resampling one axis from `inSize` to `outSize` samples.
///
/// Output sample `i` reads inputs `first[i] ..< first[i] + count[i]` with weights
/// `weights[i * taps ..< i * taps + count[i]]`, each `round(w · 2²²)`.
public struct ResampleCoefficients: Sendable {
    /// Fractional bits of the weights: 32 − 8 (sample) − 2 (headroom for filters with negative
    /// lobes), Pillow's PRECISION_BITS.
    public static let precisionBits: Int32 = 22

    /// Samples along the axis before resampling.
    public let inSize: Int
    /// Samples along the axis after resampling.
    public let outSize: Int
    /// Row stride of `weights`: the most inputs any output sample can read.
    public let taps: Int
    /// outSize: the first input sample each output sample reads.
    public private(set) var first: [Int32]
    /// outSize: how many input samples each output sample reads (at most `taps`).
    public private(set) var count: [Int32]
    /// outSize×taps, row-major: each output sample's fixed-point weights, `round(w · 2²²)`.
    public private(set) var weights: [Int32]

    /// Pillow's precompute_coeffs + normalize_coeffs_8bpc for the bilinear filter (support 1)
    /// over the whole axis (box 0...inSize).
    public init(inSize: Int, outSize: Int) {
        precondition(inSize > 0 && outSize > 0, "resample \(inSize) → \(outSize): sizes must be positive")
        self.inSize = inSize
        self.outSize = outSize
        let scale = Double(inSize) / Double(outSize)
        let filterScale = max(scale, 1.0)          // upscaling keeps the unit-width triangle
        let support = 1.0 * filterScale            // bilinear support 1, widened when shrinking
        let taps = Int(support.rounded(.up)) * 2 + 1
        self.taps = taps
        var first = [Int32](repeating: 0, count: outSize)
        var count = [Int32](repeating: 0, count: outSize)
        var weights = [Int32](repeating: 0, count: outSize * taps)
        var k = [Double](repeating: 0, count: taps)
        let inverseScale = 1.0 / filterScale
        for i in 0..<outSize {
            let center = (Double(i) + 0.5) * scale
            // (int) casts in C truncate toward zero; Int(Double) does the same.
            let lo = max(Int(center - support + 0.5), 0)
            let n = min(Int(center + support + 0.5), inSize) - lo
            var total = 0.0
            for j in 0..<n {
                var x = (Double(j + lo) - center + 0.5) * inverseScale
                if x < 0 { x = -x }
                let w = x < 1.0 ? 1.0 - x : 0.0
                k[j] = w
                total += w
            }
            for j in 0..<n {
                let w = total != 0 ? k[j] / total : k[j]
                let fixed = w * Double(1 << Self.precisionBits)
                weights[i * taps + j] = Int32(w < 0 ? fixed - 0.5 : fixed + 0.5)
            }
            first[i] = Int32(lo)
            count[i] = Int32(n)
        }
        self.first = first
        self.count = count
        self.weights = weights
    }
}

/// Rounds a fixed-point accumulator back to a sample, clipping like Pillow's clip8 table.
@inline(__always)
private func clip8(_ accumulator: Int32) -> UInt8 {
    let v = accumulator >> ResampleCoefficients.precisionBits
    return v < 0 ? 0 : (v > 255 ? 255 : UInt8(truncatingIfNeeded: v))
}

extension RGBImage {
    /// This image resized to `width × height` exactly as Pillow's
    /// `Image.resize((width, height), Image.BILINEAR)` (and so torchvision's `Resize` on a PIL
    /// image) computes it: antialiased when shrinking, pixel-identical output. Up- and
    /// downscaling, any aspect ratio. Returns a copy when the size is unchanged.
    ///
    /// `width` and `height` must be positive.
    public func resized(width outWidth: Int, height outHeight: Int) -> RGBImage {
        precondition(outWidth > 0 && outHeight > 0, "resize to \(outWidth)×\(outHeight): sizes must be positive")
        precondition(width > 0 && height > 0, "cannot resize an empty \(width)×\(height) image")
        let needHorizontal = outWidth != width
        let needVertical = outHeight != height
        if !needHorizontal && !needVertical { return self }

        let vertical = ResampleCoefficients(inSize: height, outSize: outHeight)
        if !needHorizontal {
            var out = RGBImage(width: width, height: outHeight)
            pixels.withUnsafeBufferPointer { src in
                out.pixels.withUnsafeMutableBufferPointer { dst in
                    Self.resampleVertical(src.baseAddress!, rowBytes: width * 3, rowOffset: 0, vertical,
                                          into: dst.baseAddress!)
                }
            }
            return out
        }

        let horizontal = ResampleCoefficients(inSize: width, outSize: outWidth)
        if needVertical && outHeight < height && height - outHeight > 2 * (width - outWidth) {
            // Pillow 13's vertical-first case: height × width → outHeight × width → outHeight × outWidth.
            var stage = RGBImage(width: width, height: outHeight)
            pixels.withUnsafeBufferPointer { src in
                stage.pixels.withUnsafeMutableBufferPointer { dst in
                    Self.resampleVertical(src.baseAddress!, rowBytes: width * 3, rowOffset: 0, vertical,
                                          into: dst.baseAddress!)
                }
            }
            var out = RGBImage(width: outWidth, height: outHeight)
            stage.pixels.withUnsafeBufferPointer { src in
                out.pixels.withUnsafeMutableBufferPointer { dst in
                    Self.resampleHorizontal(src.baseAddress!, width: width, rows: 0..<outHeight, horizontal,
                                            into: dst.baseAddress!)
                }
            }
            return out
        }
        // Only rows firstRow..<lastRow feed the vertical pass (all rows when it is skipped).
        let firstRow = needVertical ? Int(vertical.first[0]) : 0
        let lastRow = needVertical ? Int(vertical.first[outHeight - 1] + vertical.count[outHeight - 1]) : height
        var stage = RGBImage(width: outWidth, height: lastRow - firstRow)
        pixels.withUnsafeBufferPointer { src in
            stage.pixels.withUnsafeMutableBufferPointer { dst in
                Self.resampleHorizontal(src.baseAddress!, width: width, rows: firstRow..<lastRow, horizontal,
                                        into: dst.baseAddress!)
            }
        }
        if !needVertical { return stage }
        var out = RGBImage(width: outWidth, height: outHeight)
        stage.pixels.withUnsafeBufferPointer { src in
            out.pixels.withUnsafeMutableBufferPointer { dst in
                Self.resampleVertical(src.baseAddress!, rowBytes: outWidth * 3, rowOffset: firstRow, vertical,
                                      into: dst.baseAddress!)
            }
        }
        return out
    }

    /// Horizontal pass: source rows `rows` (each `width × 3` bytes) → `coefficients.outSize`
    /// pixels per row, written consecutively into `dst` from its first row.
    static func resampleHorizontal(_ src: UnsafePointer<UInt8>, width: Int, rows: Range<Int>,
                                   _ coefficients: ResampleCoefficients, into dst: UnsafeMutablePointer<UInt8>) {
        let outWidth = coefficients.outSize
        let taps = coefficients.taps
        let half: Int32 = 1 << (ResampleCoefficients.precisionBits - 1)
        coefficients.first.withUnsafeBufferPointer { firstBuffer in
        coefficients.count.withUnsafeBufferPointer { countBuffer in
        coefficients.weights.withUnsafeBufferPointer { weightBuffer in
            let first = firstBuffer.baseAddress!, count = countBuffer.baseAddress!
            let weights = weightBuffer.baseAddress!
            var out = dst
            for y in rows {
                let row = src + y * width * 3
                for x in 0..<outWidth {
                    var p = row + Int(first[x]) * 3
                    let k = weights + x * taps
                    var r = half, g = half, b = half
                    for j in 0..<Int(count[x]) {
                        let w = k[j]
                        r &+= Int32(p[0]) &* w
                        g &+= Int32(p[1]) &* w
                        b &+= Int32(p[2]) &* w
                        p += 3
                    }
                    out[0] = clip8(r)
                    out[1] = clip8(g)
                    out[2] = clip8(b)
                    out += 3
                }
            }
        }}}
    }

    /// Vertical pass: output row `i` is the weighted sum of source rows
    /// `first[i] - rowOffset ..< … + count[i]`, each `rowBytes` long. Channels don't matter here,
    /// so each tap is one contiguous multiply-add over the whole row (vectorisable).
    static func resampleVertical(_ src: UnsafePointer<UInt8>, rowBytes: Int, rowOffset: Int,
                                 _ coefficients: ResampleCoefficients, into dst: UnsafeMutablePointer<UInt8>) {
        let taps = coefficients.taps
        let half: Int32 = 1 << (ResampleCoefficients.precisionBits - 1)
        let accumulator = UnsafeMutablePointer<Int32>.allocate(capacity: rowBytes)
        defer { accumulator.deallocate() }
        coefficients.first.withUnsafeBufferPointer { first in
        coefficients.count.withUnsafeBufferPointer { count in
        coefficients.weights.withUnsafeBufferPointer { weights in
            for y in 0..<coefficients.outSize {
                accumulator.initialize(repeating: half, count: rowBytes)
                let top = Int(first[y]) - rowOffset
                for j in 0..<Int(count[y]) {
                    let w = weights[y * taps + j]
                    let row = src + (top + j) * rowBytes
                    for i in 0..<rowBytes { accumulator[i] &+= Int32(row[i]) &* w }
                }
                let out = dst + y * rowBytes
                for i in 0..<rowBytes { out[i] = clip8(accumulator[i]) }
            }
        }}}
    }
}
