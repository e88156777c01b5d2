import Foundation
import Imaging
import TensorCore

/// Draws a `ShapeScene` into an `RGBImage`: the background, then each object antialiased by 4×4
/// supersampled coverage (pixel (i, j) covers [i, i+1) × [j, j+1); its value blends towards the
/// object colour by the share of its 16 sample points inside the shape).
public enum SceneRenderer {
    /// Background base colour (dark, so every object colour including gray stands out).
    static let backgroundLevel: (r: Double, g: Double, b: Double) = (24, 24, 28)
    static let samplesPerAxis = 4

    public static func render(_ scene: ShapeScene) -> RGBImage {
        let side = scene.canvas
        var pixels = [Double](repeating: 0, count: side * side * 3)
        paintBackground(scene, &pixels)
        for object in scene.objects { paint(object, side: side, &pixels) }
        return RGBImage(width: side, height: side, pixels: pixels.map { UInt8(clamping: Int(($0).rounded())) })
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
        let inside = insideTest(object)
        let n = samplesPerAxis
        let color = object.rgb.map(Double.init)
        for y in y0...y1 {
            for x in x0...x1 {
                var hits = 0
                for sy in 0..<n {
                    for sx in 0..<n where inside(Double(x) + (Double(sx) + 0.5) / Double(n),
                                                 Double(y) + (Double(sy) + 0.5) / Double(n)) {
                        hits += 1
                    }
                }
                guard hits > 0 else { continue }
                let a = Double(hits) / Double(n * n)
                let p = 3 * (y * side + x)
                for c in 0..<3 { pixels[p + c] = pixels[p + c] * (1 - a) + color[c] * a }
            }
        }
    }

    /// Point-in-shape for pixel coordinates.
    static func insideTest(_ object: ShapeObject) -> (Double, Double) -> Bool {
        guard let polygon = object.polygon else {
            let r = object.radius * ShapeGeometry.circleRadius
            let r2 = r * r, cx = object.centerX, cy = object.centerY
            return { x, y in (x - cx) * (x - cx) + (y - cy) * (y - cy) <= r2 }
        }
        return { x, y in
            // Even–odd crossing test.
            var inside = false
            var j = polygon.count - 1
            for i in 0..<polygon.count {
                let (xi, yi) = polygon[i], (xj, yj) = polygon[j]
                if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi { inside.toggle() }
                j = i
            }
            return inside
        }
    }
}
