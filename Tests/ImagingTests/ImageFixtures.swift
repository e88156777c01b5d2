import Foundation
import Imaging
import TestSupport
import XCTest

/// Tests/Fixtures/images/manifest.json, written by scripts/make_image_fixtures.py.
struct ImageManifest: Decodable {
    struct Decode: Decodable { let file: String; let width: Int; let height: Int; let rgb: String; let note: String }
    struct Resize: Decodable {
        let source: String
        let source_width: Int
        let source_height: Int
        let width: Int
        let height: Int
        let rgb: String
    }
    struct Preprocess: Decodable {
        let source: String
        let source_width: Int
        let source_height: Int
        let resize: [Int]
        let crop: [Int]?
        let mean: [Float]
        let std: [Float]
        let shape: [Int]
        let tensor: String
    }
    struct Bad: Decodable { let file: String; let error: String; let pillow: String }

    let decode: [Decode]
    let resize: [Resize]
    let preprocess: [Preprocess]
    let bad: [Bad]

    static let shared: ImageManifest = {
        let url = URL(fileURLWithPath: path("manifest.json"))
        do {
            return try JSONDecoder().decode(ImageManifest.self, from: Data(contentsOf: url))
        } catch {
            fatalError("cannot read \(url.path): \(error) — run scripts/make_image_fixtures.py")
        }
    }()

    static func path(_ name: String) -> String { Fixtures.path("images/" + name) }

    static func bytes(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: path(name))))
    }

    static func rgb(_ name: String, width: Int, height: Int) throws -> RGBImage {
        RGBImage(width: width, height: height, pixels: try bytes(name))
    }
}

/// Largest per-channel difference between two same-sized images, and how many bytes differ.
func pixelDifference(_ a: RGBImage, _ b: RGBImage) -> (max: Int, count: Int) {
    precondition(a.width == b.width && a.height == b.height)
    var worst = 0, count = 0
    for (x, y) in zip(a.pixels, b.pixels) where x != y {
        worst = max(worst, abs(Int(x) - Int(y)))
        count += 1
    }
    return (worst, count)
}
