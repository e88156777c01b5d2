import BatchCaptioning
import CaptionData
import CaptionMetrics
import CaptionSupport
import CaptionTraining
import Captioning
import SyntheticWorld
import Foundation
import TestSupport
import XCTest

final class DataLoaderTests: XCTestCase {
    func testCOCOFolderResolvesImagesInEveryAcceptedPlace() throws {
        let folder = Fixtures.path("data/coco")
        XCTAssertEqual(try CaptionDataset.splits(in: folder), ["train", "val"])
        let train = try CaptionDataset.load(folder: folder, split: "train")
        XCTAssertEqual(train.images.map(\.id), [11, 12, 13])
        XCTAssertEqual(train.images.map(\.path), [folder + "/images/a.png", folder + "/train/b.png",
                                                  folder + "/images/nested/c.png"])
        XCTAssertEqual(train.images[0].captions.map(\.text),
                       ["A small red circle left of a blue square.", "a red circle and a large blue square"])
        XCTAssertEqual(train.images[2].captions[0].tokens, ["a", "man", "s", "hat", "on", "the", "table"])
        XCTAssertEqual(train.images[0].objects?.count, 2)
        XCTAssertEqual(train.images[0].objects?[1],
                       SceneObject(shape: "square", color: "blue", size: "large", bbox: BoundingBox(x: 1, y: 0, width: 1, height: 2)))
        XCTAssertNil(train.images[1].objects)
        XCTAssertEqual(train.images[1].width, 2)
        XCTAssertEqual(train.pairs.count, 5)
        XCTAssertEqual(train.pairs[2], CaptionPair(image: 1, caption: 0))
        XCTAssertEqual(train.references[12], ["Two green stars", "there are two green stars"])

        let val = try CaptionDataset.load(folder: folder, split: "val")
        XCTAssertEqual(val.images.map(\.path), [folder + "/val/d.png"])
        XCTAssertEqual(val.limitingCaptionLength(to: 3).images[0].captions.map(\.text), ["a yellow triangle"])
        XCTAssertTrue(val.limitingCaptionLength(to: 2).images.isEmpty)
    }

    func testKarpathyFileCountsRestvalAsTrain() throws {
        let folder = Fixtures.path("data/karpathy")
        XCTAssertEqual(try CaptionDataset.splits(in: folder), ["train", "val", "test"])
        let train = try CaptionDataset.load(folder: folder, split: "train")
        XCTAssertEqual(train.images.map(\.id), [100, 101])  // cocoid
        XCTAssertEqual(train.images[0].path, folder + "/train2014/COCO_train2014_000000000000.jpg")
        XCTAssertEqual(train.images[1].captions.map(\.tokens), [["a", "green", "star"], ["a", "star", "that", "is", "green"]])
        XCTAssertEqual(train.images[1].captions[0].text, "A green star.")
        XCTAssertEqual(try CaptionDataset.load(folder: folder, split: "test").images.map(\.id), [103])
        XCTAssertThrowsError(try CaptionDataset.load(folder: folder, split: "restval"))
    }

    func testMissingImageIsNamedBeforeAnythingIsUsed() throws {
        let folder = Fixtures.path("data/missing")
        XCTAssertThrowsError(try CaptionDataset.load(folder: folder, split: "train")) { error in
            let message = "\(error)"
            XCTAssertTrue(message.hasPrefix(folder + "/annotations/captions_train.json: image 2: image file \"absent.png\" not found in "), message)
            XCTAssertTrue(message.hasSuffix("(and 1 more missing)"), message)
            XCTAssertFalse(message.contains("\n"))
        }
        // Metrics-only users may skip the check.
        let unchecked = try CaptionDataset.load(folder: folder, split: "train", checkImages: false)
        XCTAssertEqual(unchecked.images.count, 3)
        XCTAssertEqual(unchecked.images[0].path, folder + "/images/present.png")
    }

    func testMissingFolderAndSplit() {
        XCTAssertEqual(message { try CaptionDataset.load(folder: "/nonexistent/ds", split: "train") },
                       "/nonexistent/ds: no such folder")
        let folder = Fixtures.path("data/coco")
        XCTAssertEqual(message { try CaptionDataset.load(folder: folder, split: "test") },
                       "\(folder): no annotations/captions_test.json (found: train, val)")
        let empty = Fixtures.path("data")
        XCTAssertEqual(message { try CaptionDataset.load(folder: empty, split: "train") },
                       "\(empty): no annotations/captions_<split>.json and no dataset_coco.json")
    }

    func message(_ body: () throws -> Any) -> String {
        do { _ = try body(); return "no error" } catch { return "\(error)" }
    }
}
