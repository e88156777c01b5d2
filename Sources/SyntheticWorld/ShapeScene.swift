import Foundation
import TensorCore
import CaptionSupport
import CaptionData

/// One object placed on the canvas.
public struct ShapeObject: Equatable, Sendable {
    /// What is drawn.
    public var shape: ShapeKind
    /// The nominal colour, the word captions use for it.
    public var color: ShapeColor
    /// Small or large, the word captions use for it.
    public var size: ShapeSize
    /// Centre of the shape's circumscribed circle, in pixels (x right, y down).
    public var centerX: Double
    /// Vertical centre, in pixels (y down).
    public var centerY: Double
    /// Size in pixels: the unit outline of `ShapeGeometry` scaled by this (the shape lies within
    /// `radius * ShapeGeometry.boundingRadius(shape)` of the centre).
    public var radius: Double
    /// The colour actually drawn (the nominal colour with a little jitter).
    public var rgb: [UInt8]

    /// The shape's outline in pixels (nil for a circle).
    public var polygon: [(x: Double, y: Double)]? {
        ShapeGeometry.outline(shape).map { points in points.map { (centerX + $0.x * radius, centerY + $0.y * radius) } }
    }

    /// The tight axis-aligned box of the drawn shape, rounded out to whole pixels and clipped to the canvas.
    public func boundingBox(canvas: Int) -> BoundingBox {
        let (minX, minY, maxX, maxY): (Double, Double, Double, Double)
        if let polygon {
            (minX, minY, maxX, maxY) = (polygon.map(\.x).min()!, polygon.map(\.y).min()!,
                                        polygon.map(\.x).max()!, polygon.map(\.y).max()!)
        } else {
            let r = radius * ShapeGeometry.circleRadius
            (minX, minY, maxX, maxY) = (centerX - r, centerY - r, centerX + r, centerY + r)
        }
        let x0 = max(0, floor(minX)), y0 = max(0, floor(minY))
        let x1 = min(Double(canvas), ceil(maxX)), y1 = min(Double(canvas), ceil(maxY))
        return BoundingBox(x: x0, y: y0, width: x1 - x0, height: y1 - y0)
    }

    /// Equal when every stored field is.
    public static func == (lhs: ShapeObject, rhs: ShapeObject) -> Bool {
        lhs.shape == rhs.shape && lhs.color == rhs.color && lhs.size == rhs.size && lhs.centerX == rhs.centerX
            && lhs.centerY == rhs.centerY && lhs.radius == rhs.radius && lhs.rgb == rhs.rgb
    }
}

/// A synthetic scene: a square canvas, its background, and 1–4 non-overlapping objects.
public struct ShapeScene: Equatable, Sendable {
    /// Side of the square canvas, in pixels.
    public var canvas: Int
    /// What fills the canvas behind the objects.
    public var background: ShapeBackground
    /// Seeds the background's noise or texture.
    public var backgroundSeed: UInt64
    /// The objects, in drawing order.
    public var objects: [ShapeObject]

    /// The objects as the dataset records them (`objects` field of the COCO `images` entry).
    public var sceneObjects: [SceneObject] {
        objects.map {
            SceneObject(shape: $0.shape.rawValue, color: $0.color.rawValue, size: $0.size.rawValue,
                        bbox: $0.boundingBox(canvas: canvas))
        }
    }
}

/// Unit-size outlines, centred on their boxes: every shape spans about −1...1, and shapes of one
/// size look about equally heavy (a circle of radius 1 would dwarf a triangle of circumradius 1).
enum ShapeGeometry {
    static let circleRadius = 0.85

    /// The largest distance of the shape from its centre, for keeping objects apart.
    static func boundingRadius(_ shape: ShapeKind) -> Double {
        guard let points = outline(shape) else { return circleRadius }
        return points.map { ($0.x * $0.x + $0.y * $0.y).squareRoot() }.max()!
    }

    static func outline(_ shape: ShapeKind) -> [(x: Double, y: Double)]? {
        switch shape {
        case .circle:
            return nil
        case .square:
            let h = 0.75
            return [(-h, -h), (h, -h), (h, h), (-h, h)]
        case .diamond:
            return [(0, -1), (0.8, 0), (0, 1), (-0.8, 0)]
        case .triangle:
            // Equilateral, pointing up, moved down so its box is centred; circumradius 1.1 so it
            // looks about as heavy as the square (its area is 41% of its circumscribed circle's).
            let r = 1.1
            return [(0, -r + 0.25 * r), (r * 0.866, 0.75 * r), (-r * 0.866, 0.75 * r)]
        case .star:
            // Five points, pointing up, inner radius 0.45 of the outer, box centred vertically.
            let shift = (1 - cos(Double.pi / 5)) / 2
            return (0..<10).map { k in
                let angle = -Double.pi / 2 + Double(k) * Double.pi / 5
                let r = k % 2 == 0 ? 1.0 : 0.45
                return (r * cos(angle), r * sin(angle) + shift)
            }
        case .cross:
            let l = 0.8, w = 0.28
            return [(-w, -l), (w, -l), (w, -w), (l, -w), (l, w), (w, w), (w, l), (-w, l), (-w, w), (-l, w), (-l, -w), (-w, -w)]
        }
    }
}
