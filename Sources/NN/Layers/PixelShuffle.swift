import TensorCore

/// `nn.PixelShuffle(2)` (Shi et al. 2016): N × 4C × H × W → N × C × 2H × 2W,
/// `out[n, c, 2i + a, 2j + b] = in[n, 4c + 2a + b, i, j]`. Its backward is the inverse permutation.
/// `Conv2d.forwardPixelShuffled` fuses it into a convolution's output.
public enum PixelShuffle {
    /// N × 4C × H × W → N × C × 2H × 2W.
    public static func forward(_ x: Tensor) -> Tensor {
        precondition(x.rank == 4 && x.shape[1] % 4 == 0, "PixelShuffle(2) needs N×4C×H×W, got \(x.shape)")
        let (n, c4, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        var y = Tensor(shape: [n, c4 / 4, 2 * h, 2 * w], unsafeUninitialized: { _ in })
        x.withUnsafeBufferPointer { xb in
            y.withUnsafeMutableBufferPointer {
                shuffle(xb.baseAddress!, into: $0.baseAddress!, images: n, channels: c4 / 4, height: h, width: w)
            }
        }
        return y
    }

    /// The permutation on raw buffers: `images` × 4·`channels` planes of height × width in `x`, `images` ×
    /// `channels` planes of 2·height × 2·width out in `y`, each output row interleaving two phase rows.
    /// `inverse` runs the inverse permutation (and so the backward): the 2·height × 2·width planes in `x`, the
    /// phase planes out in `y`.
    public static func shuffle(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, images: Int, channels: Int,
                               height h: Int, width w: Int, inverse: Bool = false) {
        let plane = h * w
        // Only the side that is `y` is written.
        let phases = inverse ? y : UnsafeMutablePointer(mutating: x)
        let frames = inverse ? UnsafeMutablePointer(mutating: x) : y
        parallelFor(images * channels, minChunk: 16) { c in
            for a in 0..<2 {
                let even = phases + (4 * c + 2 * a) * plane, odd = even + plane
                for i in 0..<h {
                    let row = frames + 4 * c * plane + (2 * i + a) * 2 * w, e = even + i * w, o = odd + i * w
                    if inverse { for j in 0..<w { e[j] = row[2 * j]; o[j] = row[2 * j + 1] } }
                    else { for j in 0..<w { row[2 * j] = e[j]; row[2 * j + 1] = o[j] } }
                }
            }
        }
    }

    /// Offset in a shuffled image (C × 2H × 2W) of element (channel, i, j) of unshuffled plane `channel`
    /// (of 4C, each H × W wide `w`).
    @inline(__always)
    static func shuffledOffset(channel: Int, i: Int, j: Int, height h: Int, width w: Int) -> Int {
        let c = channel >> 2, a = (channel >> 1) & 1, b = channel & 1
        return (c * 2 * h + 2 * i + a) * 2 * w + 2 * j + b
    }
}
