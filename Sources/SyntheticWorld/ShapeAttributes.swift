import CaptionSupport
import CaptionData

/// The shapes of the synthetic world; the raw value is the caption word.
public enum ShapeKind: String, CaseIterable, Codable, Sendable {
    case circle, square, triangle, star, diamond, cross

    /// The plural captions use ("two crosses").
    public var plural: String { self == .cross ? "crosses" : rawValue + "s" }
}

/// The colours of the synthetic world; the raw value is the caption word.
public enum ShapeColor: String, CaseIterable, Codable, Sendable {
    case red, green, blue, yellow, purple, orange, white, gray

    /// The nominal sRGB colour (objects are drawn within ±10 of it per channel).
    public var rgb: (r: UInt8, g: UInt8, b: UInt8) {
        switch self {
        case .red: return (220, 40, 40)
        case .green: return (40, 180, 60)
        case .blue: return (50, 90, 235)
        case .yellow: return (235, 215, 45)
        case .purple: return (150, 60, 205)
        case .orange: return (245, 135, 25)
        case .white: return (240, 240, 240)
        case .gray: return (128, 128, 128)
        }
    }
}

/// Object sizes; the raw value is the caption word.
public enum ShapeSize: String, CaseIterable, Codable, Sendable {
    case small, large

    /// Circumscribed radius as a fraction of the canvas side (before ±6% jitter).
    var radiusFraction: Double { self == .small ? 0.10 : 0.17 }
}

/// A colour–shape pair such as "red circle", for `--holdout`.
public struct ShapeCombination: Hashable, Codable, Sendable, CustomStringConvertible {
    /// The colour of the pair.
    public var color: ShapeColor
    /// The shape of the pair.
    public var shape: ShapeKind

    /// The pair of `color` and `shape`.
    public init(color: ShapeColor, shape: ShapeKind) { self.color = color; self.shape = shape }

    /// Parses `"red circle"`; nil with anything else.
    public init?(_ text: String) {
        let words = text.split(whereSeparator: { $0.isWhitespace }).map { $0.lowercased() }
        guard words.count == 2, let color = ShapeColor(rawValue: words[0]), let shape = ShapeKind(rawValue: words[1]) else {
            return nil
        }
        self.init(color: color, shape: shape)
    }

    /// The caption words, e.g. `"red circle"` (what `init?(_:)` parses).
    public var description: String { "\(color.rawValue) \(shape.rawValue)" }
}

/// What fills the canvas behind the objects.
public enum ShapeBackground: String, CaseIterable, Codable, Sendable {
    /// A uniform dark gray.
    case plain
    /// Dark gray with per-pixel Gaussian noise.
    case noise
    /// Dark gray with soft random waves (low contrast, so objects stay the salient thing).
    case texture
}
