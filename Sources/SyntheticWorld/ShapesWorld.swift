import Foundation
import TensorCore
import CaptionSupport
import CaptionData

/// A ShapeWorld-like generator (Kuhnle & Copestake 2017): scenes of a few coloured shapes with
/// captions that are true of them, so the whole captioning pipeline can learn and be checked
/// without downloads. See DESIGN.md "Synthetic shapes world".
///
/// Everything is a pure function of the options and a seed: scene `i` of a dataset uses its own
/// generator seeded from (seed, i), so datasets are reproducible and can be made in parallel.
public struct ShapesWorld: Sendable {
    /// What the generator draws and how many captions it writes.
    public struct Options: Equatable, Sendable {
        /// Canvas side in pixels (square images).
        public var imageSize = 96
        /// Fewest objects per scene (at least 1).
        public var minObjects = 1
        /// Most objects per scene (at most 4).
        public var maxObjects = 4
        /// The shapes objects are drawn from.
        public var shapes = ShapeKind.allCases
        /// The colours objects are drawn from.
        public var colors = ShapeColor.allCases
        /// The sizes objects are drawn from.
        public var sizes = ShapeSize.allCases
        /// What fills the canvas behind the objects.
        public var background = ShapeBackground.plain
        /// Reference captions per image (at least 5 are always possible).
        public var captionsPerImage = 5
        /// Colour–shape pairs that never appear in train or val scenes; every test scene has one.
        public var holdout: [ShapeCombination] = []

        /// The defaults: 96×96 plain canvas, 1–4 objects of every shape, colour and size, 5 captions, no holdout.
        public init() {}
    }

    /// The checked options.
    public let options: Options

    /// Checks the options: sizes, counts, and that held-out pairs leave something to train on.
    public init(options: Options) throws {
        func invalid(_ problem: String) -> CaptionError { .usage(problem) }
        guard (32...1024).contains(options.imageSize) else { throw invalid("--size must be between 32 and 1024 pixels, got \(options.imageSize)") }
        guard options.minObjects >= 1, options.maxObjects <= 4, options.minObjects <= options.maxObjects else {
            throw invalid("object counts must satisfy 1 <= min <= max <= 4, got \(options.minObjects)...\(options.maxObjects)")
        }
        guard !options.shapes.isEmpty, !options.colors.isEmpty, !options.sizes.isEmpty else {
            throw invalid("need at least one shape, one colour and one size")
        }
        guard (1...20).contains(options.captionsPerImage) else { throw invalid("captions per image must be 1...20, got \(options.captionsPerImage)") }
        for combination in options.holdout {
            guard options.colors.contains(combination.color), options.shapes.contains(combination.shape) else {
                throw invalid("held-out \"\(combination)\" uses a colour or shape the world does not draw")
            }
        }
        let allowed = options.colors.count * options.shapes.count - Set(options.holdout).count
        guard allowed > 0 else { throw invalid("every colour–shape pair is held out; nothing is left for training") }
        self.options = options
    }

    /// Which split a scene is made for: train and val scenes avoid the held-out pairs, test scenes
    /// contain at least one (when there are any).
    public enum Purpose: String, Sendable { case train, val, test }

    /// Scene `index` of the dataset with `seed`.
    public func scene(seed: UInt64, index: Int, purpose: Purpose) -> ShapeScene {
        var rng = RNG(seed: mix64(seed ^ mix64(UInt64(index) &+ 0x5348_4150_4553)))  // "SHAPES"
        while true {
            if let scene = tryScene(&rng, purpose: purpose) { return scene }
        }
    }

    /// Reference captions for `scene` (distinct, `captionsPerImage` of them), seeded like the scene.
    public func captions(for scene: ShapeScene, seed: UInt64, index: Int) -> [String] {
        var rng = RNG(seed: mix64(seed ^ mix64(UInt64(index) &+ 0x4341_5054_494F_4E53)))  // "CAPTIONS"
        return SceneCaptioner(scene: scene).captions(count: options.captionsPerImage, rng: &rng)
    }

    // MARK: - Sampling

    private func tryScene(_ rng: inout RNG, purpose: Purpose) -> ShapeScene? {
        let count = options.minObjects + rng.int(below: options.maxObjects - options.minObjects + 1)
        let held = Set(options.holdout)
        var objects: [ShapeObject] = []
        for k in 0..<count {
            let combination: ShapeCombination
            if purpose == .test && !options.holdout.isEmpty && k == 0 {
                combination = options.holdout[rng.int(below: options.holdout.count)]
            } else {
                var candidate: ShapeCombination
                repeat {
                    candidate = ShapeCombination(color: options.colors[rng.int(below: options.colors.count)],
                                                 shape: options.shapes[rng.int(below: options.shapes.count)])
                } while purpose != .test && held.contains(candidate)
                combination = candidate
            }
            let size = options.sizes[rng.int(below: options.sizes.count)]
            guard let object = place(combination, size, avoiding: objects, &rng) else { return nil }
            objects.append(object)
        }
        return ShapeScene(canvas: options.imageSize, background: options.background, backgroundSeed: rng.next(),
                          objects: objects)
    }

    /// A random position where the object lies inside the canvas and clear of the others (a gap of
    /// 4% of the canvas between bounding circles), or nil after 200 tries.
    private func place(_ combination: ShapeCombination, _ size: ShapeSize, avoiding others: [ShapeObject],
                       _ rng: inout RNG) -> ShapeObject? {
        let side = Double(options.imageSize)
        let radius = side * size.radiusFraction * Double(rng.uniform(0.94, 1.06))
        let extent = radius * ShapeGeometry.boundingRadius(combination.shape)
        let margin = extent + 1
        let gap = 0.04 * side
        for _ in 0..<200 {
            let x = margin + Double(rng.uniform()) * (side - 2 * margin)
            let y = margin + Double(rng.uniform()) * (side - 2 * margin)
            let clear = others.allSatisfy { other in
                let otherExtent = other.radius * ShapeGeometry.boundingRadius(other.shape)
                let dx = other.centerX - x, dy = other.centerY - y
                return (dx * dx + dy * dy).squareRoot() >= extent + otherExtent + gap
            }
            guard clear else { continue }
            let base = combination.color.rgb
            let rgb = [base.r, base.g, base.b].map { UInt8(clamping: Int($0) + rng.int(below: 21) - 10) }
            return ShapeObject(shape: combination.shape, color: combination.color, size: size,
                               centerX: x, centerY: y, radius: radius, rgb: rgb)
        }
        return nil
    }
}
