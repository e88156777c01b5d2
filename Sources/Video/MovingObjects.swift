import Foundation
import TensorCore

/// Moving-MNIST-like sequences (Srivastava et al. 2015, §3): objects drawn into a patch (28×28 on a 64×64
/// canvas) move in straight lines and bounce off the walls; frames combine the objects by a per-pixel max.
///
/// Objects are drawn procedurally, so nothing is downloaded: hand-written-looking digits (stroked glyphs
/// with random slant, size and stroke width) or simple shapes (disc, square, triangle, ring, cross, frame).
/// Sequence `i` depends only on `(seed, i)`, so any subset can be regenerated, in any order, in parallel.
public struct MovingObjects: Sendable {
    /// What the objects are: `digits` (stroked digit glyphs), `shapes` (simple shapes), or `mixed` (each
    /// object either, with equal odds).
    public enum Kind: String, Codable, CaseIterable, Sendable {
        case digits, shapes, mixed
    }

    /// Canvas side in pixels.
    public var size: Int
    /// Frames per sequence.
    public var frames: Int
    /// Objects per sequence.
    public var objects: Int
    /// Side of an object's patch (28, as MNIST digits).
    public var patchSize: Int
    /// What kind of objects are drawn.
    public var kind: Kind
    /// Speed range in pixels per frame.
    public var speed: ClosedRange<Float>
    /// The dataset's seed; sequence `i` is a function of (seed, i).
    public var seed: UInt64

    /// A generator with the paper's defaults: 20 frames of 64×64 with two 28×28 digits moving 2.5...4.5 pixels
    /// per frame.
    public init(size: Int = 64, frames: Int = 20, objects: Int = 2, patchSize: Int = 28, kind: Kind = .digits,
                speed: ClosedRange<Float> = 2.5...4.5, seed: UInt64 = 0) {
        precondition(size >= 2 && patchSize >= 2 && patchSize <= size && frames >= 1 && objects >= 0)
        self.size = size
        self.frames = frames
        self.objects = objects
        self.patchSize = patchSize
        self.kind = kind
        self.speed = speed
        self.seed = seed
    }

    /// What sequence `index` shows: each object's label and its top-left corner in every frame.
    public struct Track: Codable, Equatable, Sendable {
        /// `"3"` for a digit, `"disc"`, `"square"`, … for a shape.
        public var label: String
        /// Top-left corner of the patch per frame, (x, y) in pixels.
        public var positions: [[Int]]
    }

    /// The generator of sequence `index`: independent of every other index.
    func rng(for index: Int) -> RNG {
        var mixer = RNG(seed: seed ^ 0x5851_F42D_4C95_7F2D)
        let salt = mixer.next()
        return RNG(seed: salt &+ UInt64(truncatingIfNeeded: index) &* 0x9E37_79B9_7F4A_7C15)
    }

    /// Sequence `index` as `frames` gray frames of `size × size` bytes (row-major), and the objects' tracks.
    public func sequence(_ index: Int) -> (frames: [[UInt8]], tracks: [Track]) {
        var rng = rng(for: index)
        let room = Float(size - patchSize)
        var canvases = [[Float]](repeating: [Float](repeating: 0, count: size * size), count: frames)
        var tracks: [Track] = []
        for _ in 0..<objects {
            let (label, patch) = drawObject(rng: &rng)
            // Start anywhere, head in a random direction at a random speed, reflect at the walls.
            var x = rng.uniform(0, max(room, 0)), y = rng.uniform(0, max(room, 0))
            let angle = rng.uniform(0, 2 * Float.pi), v = rng.uniform(speed.lowerBound, speed.upperBound)
            var vx = v * cosf(angle), vy = v * sinf(angle)
            var positions: [[Int]] = []
            for f in 0..<frames {
                let px = Int(x.rounded()), py = Int(y.rounded())
                positions.append([px, py])
                blitMax(patch, x: px, y: py, into: &canvases[f])
                x += vx; y += vy
                if x < 0 { x = -x; vx = -vx }
                if x > room { x = 2 * room - x; vx = -vx }
                if y < 0 { y = -y; vy = -vy }
                if y > room { y = 2 * room - y; vy = -vy }
                x = min(max(x, 0), room); y = min(max(y, 0), room)
            }
            tracks.append(Track(label: label, positions: positions))
        }
        let bytes = canvases.map { canvas in canvas.map { UInt8(min(max($0, 0), 1) * 255 + 0.5) } }
        return (bytes, tracks)
    }

    /// `canvas = max(canvas, patch)` with the patch's top-left corner at (x, y).
    private func blitMax(_ patch: [Float], x: Int, y: Int, into canvas: inout [Float]) {
        for r in 0..<patchSize where y + r >= 0 && y + r < size {
            for c in 0..<patchSize where x + c >= 0 && x + c < size {
                let i = (y + r) * size + x + c
                canvas[i] = max(canvas[i], patch[r * patchSize + c])
            }
        }
    }

    // MARK: Drawing

    private func drawObject(rng: inout RNG) -> (String, [Float]) {
        let useDigit: Bool
        switch kind {
        case .digits: useDigit = true
        case .shapes: useDigit = false
        case .mixed: useDigit = rng.bernoulli(0.5)
        }
        if useDigit {
            let digit = rng.int(below: 10)
            return (String(digit), drawDigit(digit, rng: &rng))
        }
        let shape = Shape.allCases[rng.int(below: Shape.allCases.count)]
        return (shape.rawValue, drawShape(shape, rng: &rng))
    }

    /// A digit's strokes in a unit box (x right, y down), polylines through these points.
    static let digitStrokes: [[[SIMD2<Float>]]] = {
        func ellipse(_ cx: Float, _ cy: Float, _ rx: Float, _ ry: Float, from a0: Float = 0, to a1: Float = 2 * .pi,
                     points n: Int = 20) -> [SIMD2<Float>] {
            (0...n).map { i in
                let a = a0 + (a1 - a0) * Float(i) / Float(n)
                return SIMD2(cx + rx * cosf(a), cy + ry * sinf(a))
            }
        }
        let p = { (x: Float, y: Float) in SIMD2<Float>(x, y) }
        return [
            [ellipse(0.5, 0.5, 0.27, 0.42)],
            [[p(0.36, 0.24), p(0.52, 0.08), p(0.52, 0.92)]],
            [[p(0.26, 0.28), p(0.32, 0.14), p(0.47, 0.07), p(0.62, 0.1), p(0.72, 0.22), p(0.72, 0.38),
              p(0.6, 0.55), p(0.26, 0.92), p(0.78, 0.92)]],
            [[p(0.27, 0.15), p(0.45, 0.07), p(0.64, 0.11), p(0.72, 0.26), p(0.62, 0.42), p(0.45, 0.48)],
             [p(0.45, 0.48), p(0.65, 0.54), p(0.75, 0.7), p(0.68, 0.86), p(0.5, 0.93), p(0.26, 0.86)]],
            [[p(0.64, 0.92), p(0.64, 0.08), p(0.22, 0.66), p(0.8, 0.66)]],
            [[p(0.74, 0.08), p(0.33, 0.08), p(0.29, 0.45), p(0.5, 0.4), p(0.69, 0.49), p(0.75, 0.68),
              p(0.66, 0.86), p(0.46, 0.93), p(0.26, 0.85)]],
            [[p(0.7, 0.12), p(0.52, 0.07), p(0.35, 0.18), p(0.27, 0.42), p(0.27, 0.7), p(0.38, 0.89),
              p(0.56, 0.93), p(0.71, 0.82), p(0.73, 0.65), p(0.62, 0.52), p(0.44, 0.51), p(0.28, 0.62)]],
            [[p(0.22, 0.08), p(0.78, 0.08), p(0.44, 0.92)], [p(0.36, 0.5), p(0.66, 0.5)]],
            [ellipse(0.5, 0.28, 0.2, 0.2), ellipse(0.5, 0.7, 0.25, 0.23)],
            [ellipse(0.49, 0.3, 0.22, 0.22), [p(0.71, 0.3), p(0.69, 0.6), p(0.58, 0.92)]],
        ]
    }()

    /// A digit with a random slant, scale, offset and stroke width, anti-aliased into a patch.
    private func drawDigit(_ digit: Int, rng: inout RNG) -> [Float] {
        let n = Float(patchSize)
        let scale = rng.uniform(0.7, 0.95) * n
        let slant = rng.uniform(-0.3, 0.3)
        let width = rng.uniform(0.1, 0.15) * n
        let ox = (n - scale) / 2 + rng.uniform(-1, 1), oy = (n - scale) / 2 + rng.uniform(-1, 1)
        let strokes = MovingObjects.digitStrokes[digit].map { stroke in
            stroke.map { q in SIMD2(ox + scale * (q.x + slant * (0.5 - q.y)), oy + scale * q.y) }
        }
        var patch = [Float](repeating: 0, count: patchSize * patchSize)
        for r in 0..<patchSize {
            for c in 0..<patchSize {
                let q = SIMD2(Float(c) + 0.5, Float(r) + 0.5)
                var d = Float.infinity
                for stroke in strokes {
                    for k in 1..<stroke.count { d = min(d, MovingObjects.distance(q, stroke[k - 1], stroke[k])) }
                }
                patch[r * patchSize + c] = coverage(signedDistance: d - width / 2)
            }
        }
        return patch
    }

    enum Shape: String, CaseIterable {
        case disc, square, triangle, ring, cross, frame
    }

    /// A shape of random size and rotation (rotation for the polygons only), anti-aliased into a patch.
    private func drawShape(_ shape: Shape, rng: inout RNG) -> [Float] {
        let n = Float(patchSize)
        let radius = rng.uniform(0.3, 0.46) * n
        let angle = rng.uniform(0, 2 * .pi)
        let centre = SIMD2(n / 2, n / 2)
        let thickness = rng.uniform(0.09, 0.14) * n
        var patch = [Float](repeating: 0, count: patchSize * patchSize)
        let polygon: [SIMD2<Float>]
        switch shape {
        case .square, .frame: polygon = MovingObjects.regularPolygon(4, centre, radius * 0.95, angle)
        case .triangle: polygon = MovingObjects.regularPolygon(3, centre, radius * 1.05, angle)
        default: polygon = []
        }
        for r in 0..<patchSize {
            for c in 0..<patchSize {
                let q = SIMD2(Float(c) + 0.5, Float(r) + 0.5)
                let rel = q - centre
                let dc = (rel * rel).sum().squareRoot()
                let sd: Float
                switch shape {
                case .disc: sd = dc - radius
                case .ring: sd = abs(dc - radius + thickness / 2) - thickness / 2
                case .square, .triangle: sd = MovingObjects.polygonSignedDistance(q, polygon)
                case .frame: sd = abs(MovingObjects.polygonSignedDistance(q, polygon) + thickness / 2) - thickness / 2
                case .cross:
                    let (cs, sn) = (cosf(angle), sinf(angle))
                    let u = abs(cs * rel.x + sn * rel.y), v = abs(-sn * rel.x + cs * rel.y)
                    let arm1 = max(u - radius, v - thickness / 2 - 0.5), arm2 = max(v - radius, u - thickness / 2 - 0.5)
                    sd = min(arm1, arm2)
                }
                patch[r * patchSize + c] = coverage(signedDistance: sd)
            }
        }
        return patch
    }

    /// Pixel coverage from a signed distance (negative inside): a one-pixel linear ramp across the edge.
    @inline(__always) private func coverage(signedDistance d: Float) -> Float { min(max(0.5 - d, 0), 1) }

    static func distance(_ q: SIMD2<Float>, _ a: SIMD2<Float>, _ b: SIMD2<Float>) -> Float {
        let ab = b - a, aq = q - a
        let len2 = (ab * ab).sum()
        let t = len2 > 0 ? min(max((aq * ab).sum() / len2, 0), 1) : 0
        let d = aq - t * ab
        return (d * d).sum().squareRoot()
    }

    static func regularPolygon(_ sides: Int, _ centre: SIMD2<Float>, _ radius: Float, _ angle: Float) -> [SIMD2<Float>] {
        (0..<sides).map { i in
            let a = angle + 2 * .pi * Float(i) / Float(sides)
            return centre + radius * SIMD2(cosf(a), sinf(a))
        }
    }

    /// Signed distance to a convex polygon (negative inside).
    static func polygonSignedDistance(_ q: SIMD2<Float>, _ polygon: [SIMD2<Float>]) -> Float {
        var edgeDistance = Float.infinity
        var inside = true
        let n = polygon.count
        var area: Float = 0
        for i in 0..<n {
            let a = polygon[i], b = polygon[(i + 1) % n]
            area += a.x * b.y - b.x * a.y
        }
        for i in 0..<n {
            let a = polygon[i], b = polygon[(i + 1) % n]
            edgeDistance = min(edgeDistance, distance(q, a, b))
            let cross = (b.x - a.x) * (q.y - a.y) - (b.y - a.y) * (q.x - a.x)
            if cross * area < 0 { inside = false }
        }
        return inside ? -edgeDistance : edgeDistance
    }
}
