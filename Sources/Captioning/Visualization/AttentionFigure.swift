import Imaging
import Vision
import CaptionSupport
import CaptionData

/// Draws attention the way Figure 3 of *Show, Attend and Tell* does: the image, then for each generated word
/// the image with that step's α (an H'×W' grid) upsampled bilinearly to the picture, scaled to its own range
/// (as matplotlib's `imshow` in the tutorial's `visualize_att` does) and blended over it as a heat map, with the word as a label underneath, in rows of `columns` panels.
///
/// ```swift
/// let r = try captioner.caption(imagePath: path)
/// let figure = AttentionFigure().render(image: image, words: r.tokens, alphas: r.alphas, grid: r.grid)
/// try figure.writePNG(to: "attention.png")
/// ```
///
/// The grid is taken to cover the whole `image` (pass the cropped view when the model's preprocessing crops).
public struct AttentionFigure: Sendable {
    /// Width of each panel in pixels (its height follows the image's aspect ratio).
    public var panelWidth: Int
    /// Panels per row.
    public var columns: Int
    /// How strongly the heat map covers the image (0…1).
    public var opacity: Float

    /// A figure layout; traps unless `panelWidth` ≥ 16, `columns` ≥ 1 and 0 ≤ `opacity` ≤ 1.
    public init(panelWidth: Int = 224, columns: Int = 5, opacity: Float = 0.6) {
        precondition(panelWidth >= 16 && columns >= 1 && opacity >= 0 && opacity <= 1)
        self.panelWidth = panelWidth
        self.columns = columns
        self.opacity = opacity
    }

    static let margin = 6
    static let labelScale = 2

    /// The figure: the plain image first, then one panel per word (`words[i]` with `alphas[i]`, each
    /// `grid.height·grid.width` weights; extra alphas, e.g. `<end>`'s, are ignored).
    public func render(image: RGBImage, words: [String], alphas: [[Float]], grid: GridSize) -> RGBImage {
        precondition(alphas.count >= words.count, "AttentionFigure: \(words.count) words but \(alphas.count) attention maps")
        precondition(image.width > 0 && image.height > 0, "AttentionFigure: empty image")
        let pw = panelWidth
        let ph = max(1, Int((Double(pw) * Double(image.height) / Double(image.width)).rounded()))
        let base = image.resized(width: pw, height: ph)
        let labelHeight = BitmapFont.glyphHeight * Self.labelScale + 8
        let panels = 1 + words.count
        let cols = min(columns, panels), rows = (panels + cols - 1) / cols
        let m = Self.margin
        var canvas = RGBImage(width: m + cols * (pw + m), height: m + rows * (ph + labelHeight + m),
                              pixels: [UInt8](repeating: 255, count: (m + cols * (pw + m)) * (m + rows * (ph + labelHeight + m)) * 3))
        for i in 0..<panels {
            let x = m + (i % cols) * (pw + m), y = m + (i / cols) * (ph + labelHeight + m)
            let panel = i == 0 ? base : heatMap(base, alphas[i - 1], grid)
            paste(panel, into: &canvas, x: x, y: y)
            if i > 0 { label(words[i - 1], into: &canvas, x: x, y: y + ph + 4, width: pw) }
        }
        return canvas
    }

    /// `image` with α (grid.height × grid.width) upsampled bilinearly (PyTorch's align_corners=False sampling),
    /// mapped from [min α, max α] to [0, 1], and blended as a black–red–yellow–white heat map.
    func heatMap(_ image: RGBImage, _ alpha: [Float], _ grid: GridSize) -> RGBImage {
        let (gh, gw) = (grid.height, grid.width)
        precondition(alpha.count == gh * gw, "AttentionFigure: \(alpha.count) weights for a \(gh)×\(gw) grid")
        let low = alpha.min() ?? 0, high = alpha.max() ?? 0
        let scale: Float = high > low ? 1 / (high - low) : 0
        let (w, h) = (image.width, image.height)
        // Per output column / row: the two source cells and the weight of the second.
        func taps(_ n: Int, _ cells: Int) -> [(Int, Int, Float)] {
            (0..<n).map { i in
                let s = min(max((Float(i) + 0.5) * Float(cells) / Float(n) - 0.5, 0), Float(cells - 1))
                let lo = Int(s)
                return (lo, min(lo + 1, cells - 1), s - Float(lo))
            }
        }
        let xs = taps(w, gw), ys = taps(h, gh)
        var out = image
        let o = opacity
        out.pixels.withUnsafeMutableBufferPointer { px in
            for y in 0..<h {
                let (y0, y1, fy) = ys[y]
                for x in 0..<w {
                    let (x0, x1, fx) = xs[x]
                    let top = alpha[y0 * gw + x0] * (1 - fx) + alpha[y0 * gw + x1] * fx
                    let bottom = alpha[y1 * gw + x0] * (1 - fx) + alpha[y1 * gw + x1] * fx
                    let t = min(max((top * (1 - fy) + bottom * fy - low) * scale, 0), 1)
                    let heat = (min(3 * t, 1), min(max(3 * t - 1, 0), 1), max(3 * t - 2, 0))
                    let p = (y * w + x) * 3
                    px[p] = UInt8(((1 - o) * Float(px[p]) + o * 255 * heat.0).rounded())
                    px[p + 1] = UInt8(((1 - o) * Float(px[p + 1]) + o * 255 * heat.1).rounded())
                    px[p + 2] = UInt8(((1 - o) * Float(px[p + 2]) + o * 255 * heat.2).rounded())
                }
            }
        }
        return out
    }

    private func paste(_ panel: RGBImage, into canvas: inout RGBImage, x: Int, y: Int) {
        let rowBytes = panel.width * 3
        canvas.pixels.withUnsafeMutableBufferPointer { dst in
            panel.pixels.withUnsafeBufferPointer { src in
                for r in 0..<panel.height {
                    (dst.baseAddress! + ((y + r) * canvas.width + x) * 3)
                        .update(from: src.baseAddress! + r * rowBytes, count: rowBytes)
                }
            }
        }
    }

    /// The word centred under its panel: at twice the font size when it fits, else 1×, else cut with "..".
    private func label(_ word: String, into canvas: inout RGBImage, x: Int, y: Int, width: Int) {
        var text = word, scale = Self.labelScale
        if BitmapFont.width(of: text, scale: scale) > width { scale = 1 }
        while text.count > 2 && BitmapFont.width(of: text, scale: scale) > width { text = String(text.dropLast(3)) + ".." }
        let x0 = x + max(0, (width - BitmapFont.width(of: text, scale: scale)) / 2)
        BitmapFont.draw(text, into: &canvas, x: x0, y: y + (scale == 1 ? BitmapFont.glyphHeight / 2 : 0), scale: scale)
    }
}
