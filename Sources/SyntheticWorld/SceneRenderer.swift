import Foundation
import Imaging
import TensorCore
import CaptionSupport
import CaptionData

/// Draws a `ShapeScene` into an `RGBImage`: the background, then each object antialiased by its
/// coverage of every pixel (pixel (i, j) covers [i, i+1) × [j, j+1)): exact horizontally, sampled on
/// 4 sub-rows vertically; the pixel blends towards the object colour by that share.
public enum SceneRenderer {
    /// Background base colour (dark, so every object colour including gray stands out).
    static let backgroundLevel: (r: Double, g: Double, b: Double) = (24, 24, 28)
    static let subRows = 4

    /// The scene as a canvas×canvas image.
    public static func render(_ scene: ShapeScene) -> RGBImage {
        let side = scene.canvas
        var pixels = [Double](repeating: 0, count: side * side * 3)
        paintBackground(scene, &pixels)
        for object in scene.objects { paint(object, side: side, &pixels) }
        // Int(v + 0.5) rounds like rounded() wherever the clamp does not already decide (v ≥ 0), and is
        // several times cheaper than libm's round.
        return RGBImage(width: side, height: side, pixels: pixels.map { UInt8(clamping: Int($0 + 0.5)) })
    }

    private static func paintBackground(_ scene: ShapeScene, _ pixels: inout [Double]) {
        let side = scene.canvas
        var rng = RNG(seed: scene.backgroundSeed)
        let base = backgroundLevel
        switch scene.background {
        case .plain:
            for p in 0..<(side * side) { pixels[3 * p] = base.r; pixels[3 * p + 1] = base.g; pixels[3 * p + 2] = base.b }
        case .noise:
            for p in 0..<(side * side) {
                let n = Double(rng.normal()) * 10  // luminance noise plus a little colour noise
                pixels[3 * p] = base.r + n + Double(rng.normal()) * 3
                pixels[3 * p + 1] = base.g + n + Double(rng.normal()) * 3
                pixels[3 * p + 2] = base.b + n + Double(rng.normal()) * 3
            }
        case .texture:
            // Two soft plane waves with random direction, wavelength and phase, and a faint tint.
            let waves = (0..<2).map { _ -> (kx: Double, ky: Double, phase: Double) in
                let angle = Double(rng.uniform(0, 2 * .pi))
                let k = 2 * Double.pi / (Double(side) * Double(rng.uniform(0.15, 0.5)))
                return (k * cos(angle), k * sin(angle), Double(rng.uniform(0, 2 * .pi)))
            }
            let tint = (0..<3).map { _ in Double(rng.uniform(-6, 6)) }
            for y in 0..<side {
                for x in 0..<side {
                    var v = 0.0
                    for w in waves { v += sin(w.kx * Double(x) + w.ky * Double(y) + w.phase) }
                    let level = 14 * v / 2
                    let p = 3 * (y * side + x)
                    pixels[p] = base.r + level + tint[0]
                    pixels[p + 1] = base.g + level + tint[1]
                    pixels[p + 2] = base.b + level + tint[2]
                }
            }
        }
    }

    private static func paint(_ object: ShapeObject, side: Int, _ pixels: inout [Double]) {
        let extent = object.radius * ShapeGeometry.boundingRadius(object.shape)
        let x0 = max(0, Int(floor(object.centerX - extent))), x1 = min(side - 1, Int(ceil(object.centerX + extent)))
        let y0 = max(0, Int(floor(object.centerY - extent))), y1 = min(side - 1, Int(ceil(object.centerY + extent)))
        guard x0 <= x1, y0 <= y1 else { return }
        let color = object.rgb.map(Double.init)
        let polygon = object.polygon
        let rows = Double(subRows)
        var coverage = [Double](repeating: 0, count: x1 - x0 + 1)
        var spans: [(Double, Double)] = []
        for y in y0...y1 {
            for i in coverage.indices { coverage[i] = 0 }
            for k in 0..<subRows {
                let sampleY = Double(y) + (Double(k) + 0.5) / rows
                spans.removeAll(keepingCapacity: true)
                insideSpans(object, polygon, atY: sampleY, into: &spans)
                for (left, right) in spans {
                    // Exact share of each pixel [x, x+1) covered by the span on this sub-row.
                    let lo = max(left, Double(x0)), hi = min(right, Double(x1 + 1))
                    guard hi > lo else { continue }
                    for x in Int(floor(lo))..<Int(ceil(hi)) {
                        coverage[x - x0] += (min(hi, Double(x + 1)) - max(lo, Double(x))) / rows
                    }
                }
            }
            for i in coverage.indices where coverage[i] > 0 {
                let a = min(1, coverage[i])
                let p = 3 * (y * side + x0 + i)
                for c in 0..<3 { pixels[p + c] = pixels[p + c] * (1 - a) + color[c] * a }
            }
        }
    }

    /// The x-intervals where the horizontal line at `y` is inside the shape (even–odd rule for
    /// polygons, so the star's and cross's concave outlines fill correctly).
    static func insideSpans(_ object: ShapeObject, _ polygon: [(x: Double, y: Double)]?, atY y: Double,
                            into spans: inout [(Double, Double)]) {
        guard let polygon else {
            let r = object.radius * ShapeGeometry.circleRadius, dy = y - object.centerY
            if abs(dy) < r {
                let half = (r * r - dy * dy).squareRoot()
                spans.append((object.centerX - half, object.centerX + half))
            }
            return
        }
        var crossings: [Double] = []
        var j = polygon.count - 1
        for i in 0..<polygon.count {
            let (xi, yi) = polygon[i], (xj, yj) = polygon[j]
            if (yi > y) != (yj > y) { crossings.append((xj - xi) * (y - yi) / (yj - yi) + xi) }
            j = i
        }
        crossings.sort()
        var k = 0
        while k + 1 < crossings.count { spans.append((crossings[k], crossings[k + 1])); k += 2 }
    }
}
