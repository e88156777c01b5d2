@testable import BatchCaptioning
@testable import CaptionData
@testable import CaptionMetrics
@testable import CaptionSupport
@testable import CaptionTraining
@testable import Captioning
@testable import SyntheticWorld
import Foundation
import Imaging
import TestSupport
import XCTest

final class SynthWorldTests: XCTestCase {
    func world(_ configure: (inout ShapesWorld.Options) -> Void = { _ in }) throws -> ShapesWorld {
        var options = ShapesWorld.Options()
        configure(&options)
        return try ShapesWorld(options: options)
    }

    func testScenesAreDeterministicAndSeedDependent() throws {
        let w = try world()
        let a = w.scene(seed: 5, index: 3, purpose: .train)
        XCTAssertEqual(a, w.scene(seed: 5, index: 3, purpose: .train))
        XCTAssertNotEqual(a, w.scene(seed: 6, index: 3, purpose: .train))
        XCTAssertNotEqual(a, w.scene(seed: 5, index: 4, purpose: .train))
        XCTAssertEqual(SceneRenderer.render(a), SceneRenderer.render(a))
        XCTAssertEqual(w.captions(for: a, seed: 5, index: 3), w.captions(for: a, seed: 5, index: 3))
    }

    func testObjectsStayInsideTheCanvasAndApart() throws {
        let w = try world()
        var counts = [Int](repeating: 0, count: 5)
        for index in 0..<300 {
            let scene = w.scene(seed: 1, index: index, purpose: .train)
            counts[scene.objects.count] += 1
            for (i, object) in scene.objects.enumerated() {
                let box = object.boundingBox(canvas: 96)
                XCTAssertTrue(box.x >= 0 && box.y >= 0 && box.x + box.width <= 96 && box.y + box.height <= 96)
                XCTAssertGreaterThan(box.width, 8)
                for other in scene.objects[(i + 1)...] {
                    let distance = ((object.centerX - other.centerX) * (object.centerX - other.centerX)
                        + (object.centerY - other.centerY) * (object.centerY - other.centerY)).squareRoot()
                    XCTAssertGreaterThan(distance, object.radius * ShapeGeometry.boundingRadius(object.shape)
                        + other.radius * ShapeGeometry.boundingRadius(other.shape))
                }
            }
        }
        XCTAssertEqual(counts[0], 0)
        XCTAssertTrue(counts[1...4].allSatisfy { $0 > 40 }, "object counts \(counts)")
    }

    func testRenderedObjectsHaveTheirColourInsideTheirBox() throws {
        let w = try world()
        for index in 0..<20 {
            let scene = w.scene(seed: 9, index: index, purpose: .train)
            let image = SceneRenderer.render(scene)
            XCTAssertEqual(image.width, 96)
            for object in scene.objects {
                // The box centre of a convex shape (all but star and cross arms, whose centre is solid too) is fully covered.
                let box = object.boundingBox(canvas: 96)
                let x = Int(box.centerX), y = Int(box.centerY)
                let p = 3 * (y * 96 + x)
                XCTAssertEqual(Array(image.pixels[p..<(p + 3)]), object.rgb, "\(object.color) \(object.shape)")
            }
            // Corners are background (objects keep a margin from the edge).
            XCTAssertEqual(Array(image.pixels[0..<3]), [24, 24, 28])
        }
    }

    func testCaptionsAreTrueOfTheScene() throws {
        let w = try world()
        let numbers = ["one": 1, "two": 2, "three": 3, "four": 4]
        for index in 0..<200 {
            let scene = w.scene(seed: 2, index: index, purpose: .train)
            let captions = w.captions(for: scene, seed: 2, index: index)
            XCTAssertEqual(captions.count, 5)
            XCTAssertEqual(Set(captions).count, 5)
            let objects = scene.objects
            for caption in captions {
                let words = caption.split(separator: " ").map(String.init)
                // Every colour and shape word names an object of the scene.
                for word in words {
                    if let color = ShapeColor(rawValue: word) { XCTAssertTrue(objects.contains { $0.color == color }, caption) }
                    if let shape = ShapeKind(rawValue: word) { XCTAssertTrue(objects.contains { $0.shape == shape }, caption) }
                }
                // "N shapes" and "N <colour> <plural>" are exact counts.
                for (k, word) in words.enumerated() {
                    guard let n = numbers[word], k + 1 < words.count else { continue }
                    if words[k + 1] == "shapes" {
                        XCTAssertEqual(n, objects.count, caption)
                    } else if let color = ShapeColor(rawValue: words[k + 1]), k + 2 < words.count,
                              let shape = ShapeKind.allCases.first(where: { $0.plural == words[k + 2] }) {
                        XCTAssertEqual(n, objects.filter { $0.color == color && $0.shape == shape }.count, caption)
                    } else if let color = ShapeColor(rawValue: words[k + 1]), k + 2 < words.count, words[k + 2] == "shapes" {
                        XCTAssertEqual(n, objects.filter { $0.color == color }.count, caption)
                    } else if let shape = ShapeKind.allCases.first(where: { $0.plural == words[k + 1] }) {
                        XCTAssertEqual(n, objects.filter { $0.shape == shape }.count, caption)
                    } else if words[k + 1] == "other" {
                        XCTAssertEqual(n, objects.count - 1, caption)
                    }
                }
                // "a <color> <shape> above a <color> <shape>": some such pair stands in that relation.
                for (phrase, relation) in [("above", ShapeRelation.above), ("below", .below),
                                           ("to the left of", .leftOf), ("to the right of", .rightOf)] {
                    guard let range = caption.range(of: " \(phrase) ") else { continue }
                    let left = Self.lastObjectWords(String(caption[..<range.lowerBound]))
                    let right = Self.firstObjectWords(String(caption[range.upperBound...]))
                    let holds = objects.indices.contains { i in
                        objects.indices.contains { j in
                            i != j && Self.matches(objects[i], left) && Self.matches(objects[j], right)
                                && ShapeRelation.between(objects[i].boundingBox(canvas: 96), objects[j].boundingBox(canvas: 96)) == relation
                        }
                    }
                    XCTAssertTrue(holds, "\(caption) — \(objects.map { "\($0.size) \($0.color) \($0.shape) \($0.boundingBox(canvas: 96))" })")
                }
            }
        }
    }

    /// Attribute words of the object phrase that ends `text` ("... a small red circle").
    static func lastObjectWords(_ text: String) -> [String] {
        let words = text.split(separator: " ").map(String.init)
        let start = (words.lastIndex { ["a", "an", "the"].contains($0) } ?? -1) + 1
        return Array(words[start...])
    }

    static func firstObjectWords(_ text: String) -> [String] {
        let words = text.split(separator: " ").map(String.init).drop { ["a", "an", "the"].contains($0) }
        var phrase: [String] = []
        for word in words {
            phrase.append(word)
            if ShapeKind(rawValue: word) != nil { break }
        }
        return phrase
    }

    static func matches(_ object: ShapeObject, _ words: [String]) -> Bool {
        words.allSatisfy { word in
            if let c = ShapeColor(rawValue: word) { return object.color == c }
            if let s = ShapeKind(rawValue: word) { return object.shape == s }
            if let z = ShapeSize(rawValue: word) { return object.size == z }
            return true
        }
    }

    func testRelationsAndRegions() {
        let a = BoundingBox(x: 0, y: 40, width: 10, height: 10), b = BoundingBox(x: 50, y: 42, width: 10, height: 10)
        XCTAssertEqual(ShapeRelation.between(a, b), .leftOf)
        XCTAssertEqual(ShapeRelation.between(b, a), .rightOf)
        let c = BoundingBox(x: 2, y: 0, width: 10, height: 10)
        XCTAssertEqual(ShapeRelation.between(c, a), .above)
        XCTAssertEqual(ShapeRelation.between(a, c), .below)
        XCTAssertNil(ShapeRelation.between(a, BoundingBox(x: 5, y: 45, width: 10, height: 10)))
        XCTAssertEqual(ShapeRelation.region(of: BoundingBox(x: 0, y: 0, width: 10, height: 10), canvas: 96), "in the top left corner")
        XCTAssertEqual(ShapeRelation.region(of: BoundingBox(x: 40, y: 40, width: 10, height: 10), canvas: 96), "in the center")
        XCTAssertEqual(ShapeRelation.region(of: BoundingBox(x: 40, y: 80, width: 10, height: 10), canvas: 96), "at the bottom")
        XCTAssertEqual(ShapeRelation.region(of: BoundingBox(x: 80, y: 40, width: 10, height: 10), canvas: 96), "on the right")
        XCTAssertEqual(English.article("orange star"), "an orange star")
        XCTAssertEqual(English.list(["a", "b", "c"]), "a, b and c")
    }

    func testOptionsAreValidated() {
        XCTAssertThrowsError(try world { $0.imageSize = 16 })
        XCTAssertThrowsError(try world { $0.maxObjects = 5 })
        XCTAssertThrowsError(try world { $0.colors = [.red]; $0.shapes = [.circle]; $0.holdout = [ShapeCombination("red circle")!] })
        XCTAssertThrowsError(try world { $0.colors = [.red]; $0.holdout = [ShapeCombination("blue star")!] })
        XCTAssertNil(ShapeCombination("red"))
        XCTAssertNil(ShapeCombination("crimson circle"))
        XCTAssertEqual(ShapeCombination("  Red   CIRCLE ")?.description, "red circle")
    }
}
