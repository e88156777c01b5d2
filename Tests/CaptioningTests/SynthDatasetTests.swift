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

final class SynthDatasetTests: XCTestCase {
    var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("synth-\(UUID())")
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    func write(_ name: String, count: Int = 20, seed: UInt64 = 3,
               _ configure: (inout ShapesWorld.Options) -> Void = { _ in }) throws -> String {
        var options = ShapesWorld.Options()
        configure(&options)
        let folder = directory.appendingPathComponent(name).path
        try ShapesDatasetWriter(world: try ShapesWorld(options: options), count: count, seed: seed).write(to: folder)
        return folder
    }

    /// Every file of the folder, by relative path.
    func contents(_ folder: String) throws -> [String: Data] {
        var result: [String: Data] = [:]
        let enumerator = FileManager.default.enumerator(atPath: folder)!
        while let relative = enumerator.nextObject() as? String {
            var isDirectory: ObjCBool = false
            let path = folder + "/" + relative
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue {
                result[relative] = FileManager.default.contents(atPath: path)
            }
        }
        return result
    }

    func testSameSeedSameBytesDifferentSeedDifferentData() throws {
        let a = try contents(try write("a"))
        let b = try contents(try write("b"))
        let c = try contents(try write("c", seed: 4))
        XCTAssertEqual(a.count, 20 + 3)
        XCTAssertEqual(a, b)
        XCTAssertEqual(Set(a.keys), Set(c.keys))
        XCTAssertNotEqual(a["images/000001.png"], c["images/000001.png"])
        XCTAssertNotEqual(a["annotations/captions_train.json"], c["annotations/captions_train.json"])
        XCTAssertFalse(a.keys.contains { $0.contains(".tmp") })
    }

    func testFolderLoadsAsACOCODatasetWithObjects() throws {
        let folder = try write("coco", count: 20)
        XCTAssertEqual(try CaptionDataset.splits(in: folder), ["train", "val", "test"])
        let train = try CaptionDataset.load(folder: folder, split: "train")
        let val = try CaptionDataset.load(folder: folder, split: "val")
        let test = try CaptionDataset.load(folder: folder, split: "test")
        XCTAssertEqual([train.images.count, val.images.count, test.images.count], [16, 2, 2])
        XCTAssertEqual(train.images.map(\.id), Array(1...16))
        XCTAssertEqual(test.images.map(\.id), [19, 20])
        XCTAssertTrue(train.images.allSatisfy { $0.captions.count == 5 && ($0.objects?.count ?? 0) >= 1 })
        // The loaded objects are the generated scene's, and the PNG decodes to the rendered scene.
        let world = try ShapesWorld(options: .init())
        let scene = world.scene(seed: 3, index: 0, purpose: .train)
        XCTAssertEqual(train.images[0].objects, scene.sceneObjects)
        XCTAssertEqual(train.images[0].captions.map(\.text), world.captions(for: scene, seed: 3, index: 0))
        let decoded = try ImageDecoder().decode(path: train.images[0].path)
        XCTAssertEqual(decoded, SceneRenderer.render(scene))
        XCTAssertEqual(train.images[0].width, 96)
    }

    func testHoldoutNeverInTrainOrValAlwaysInTest() throws {
        let held = [ShapeCombination("red circle")!, ShapeCombination("blue star")!]
        let folder = try write("holdout", count: 60) { $0.holdout = held }
        func combinations(_ split: String) throws -> [[ShapeCombination]] {
            try CaptionDataset.load(folder: folder, split: split).images.map { image in
                image.objects!.map { ShapeCombination(color: ShapeColor(rawValue: $0.color)!, shape: ShapeKind(rawValue: $0.shape)!) }
            }
        }
        for split in ["train", "val"] {
            XCTAssertTrue(try combinations(split).allSatisfy { Set($0).isDisjoint(with: held) }, split)
        }
        let test = try combinations("test")
        XCTAssertEqual(test.count, 6)
        XCTAssertTrue(test.allSatisfy { !Set($0).isDisjoint(with: held) })
        // Captions of train images never pair the held-out colour with the held-out shape.
        let trainCaptions = try CaptionDataset.load(folder: folder, split: "train").images.flatMap { $0.captions.map(\.text) }
        XCTAssertFalse(trainCaptions.contains { $0.contains("red circle") || $0.contains("blue star") })
    }

    func testRefusesANonEmptyFolderAndBadSplits() throws {
        let folder = try write("once", count: 2)
        XCTAssertThrowsError(try ShapesDatasetWriter(world: try ShapesWorld(options: .init()), count: 2, seed: 1).write(to: folder)) { error in
            XCTAssertEqual("\(error)", "\(folder): already exists and is not empty (choose a new --out folder)")
        }
        XCTAssertThrowsError(try ShapesDatasetWriter(world: try ShapesWorld(options: .init()), count: 0, seed: 1))
        XCTAssertThrowsError(try ShapesDatasetWriter(world: try ShapesWorld(options: .init()), count: 5, seed: 1, fractions: (0.5, 0.2, 0.2)))
        let small = try ShapesDatasetWriter(world: try ShapesWorld(options: .init()), count: 3, seed: 1)
        XCTAssertEqual(small.splitCounts.train + small.splitCounts.val + small.splitCounts.test, 3)
        XCTAssertEqual(small.fileName(ofImage: 0), "000001.png")
    }

    func testOtherSizesAndBackgrounds() throws {
        for background in ShapeBackground.allCases {
            var options = ShapesWorld.Options()
            options.imageSize = 224
            options.background = background
            let world = try ShapesWorld(options: options)
            let scene = world.scene(seed: 1, index: 0, purpose: .train)
            let image = SceneRenderer.render(scene)
            XCTAssertEqual(image.width, 224)
            XCTAssertEqual(image, SceneRenderer.render(scene))
            // Layout scales with the canvas: the same index gives the same scene at any size.
            let small = try ShapesWorld(options: { var o = options; o.imageSize = 96; return o }()).scene(seed: 1, index: 0, purpose: .train)
            XCTAssertEqual(small.objects.map(\.shape), scene.objects.map(\.shape))
        }
    }
}
