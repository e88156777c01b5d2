import Foundation
import Imaging
import TensorCore
import TestSupport
import XCTest

/// `caption synth shapes`, `caption metrics` and `caption features` against CLI.md, at tiny sizes.
final class DataCLITests: CLITestCase {
    static let splits = ["train", "val", "test"]

    // MARK: synth shapes

    /// The COCO-style folder: annotations/captions_<split>.json for train, val and test, every listed image
    /// under images/ at the asked size, several captions per image, object boxes inside the image.
    func testSynthShapesWritesACOCOStyleFolder() throws {
        let summary = try captionJSON(["synth", "shapes", "--out", path("set"), "--count", "12", "--size", "32",
                                       "--seed", "5", "--quiet"])
        XCTAssertEqual(summary["out"] as? String, path("set"))
        XCTAssertEqual(summary["images"] as? Int, 12)
        let root = path("set")
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: root)), ["annotations", "images"])
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: root + "/annotations")),
                       Set(Self.splits.map { "captions_\($0).json" }))
        var ids: [Int] = [], files: [String] = [], annotationIDs = Set<Int>()
        for split in Self.splits {
            let file = try XCTUnwrap(try readJSON(root + "/annotations/captions_\(split).json") as? [String: Any])
            let images = try XCTUnwrap(file["images"] as? [[String: Any]], split)
            let annotations = try XCTUnwrap(file["annotations"] as? [[String: Any]], split)
            XCTAssertEqual(images.count, summary[split] as? Int, "\(split): the summary's count")
            XCTAssertFalse(images.isEmpty, split)
            for image in images {
                let id = try XCTUnwrap(image["id"] as? Int), name = try XCTUnwrap(image["file_name"] as? String)
                XCTAssertEqual(image["width"] as? Int, 32)
                XCTAssertEqual(image["height"] as? Int, 32)
                let decoded = try ImageDecoder().decode(path: root + "/images/" + name)
                XCTAssertEqual([decoded.width, decoded.height], [32, 32], name)
                let objects = try XCTUnwrap(image["objects"] as? [[String: Any]], "\(name): objects")
                XCTAssertTrue((1...4).contains(objects.count), name)
                for object in objects {
                    XCTAssertNotNil(object["color"] as? String)
                    XCTAssertNotNil(object["shape"] as? String)
                    let box = try XCTUnwrap(object["bbox"] as? [Int], "\(name): bbox [x, y, w, h]")
                    XCTAssertEqual(box.count, 4)
                    XCTAssertTrue(box[0] >= 0 && box[1] >= 0 && box[2] > 0 && box[3] > 0 && box[0] + box[2] <= 32
                                  && box[1] + box[3] <= 32, "\(name): \(box) inside the 32×32 image")
                }
                let captions = annotations.filter { $0["image_id"] as? Int == id }.compactMap { $0["caption"] as? String }
                XCTAssertEqual(captions.count, 5, "\(name): five reference captions by default")
                XCTAssertTrue(captions.allSatisfy { !$0.isEmpty })
                ids.append(id); files.append(name)
            }
            XCTAssertEqual(Set(annotations.map { $0["image_id"] as! Int }), Set(images.map { $0["id"] as! Int }),
                           "\(split): every caption belongs to an image of the split")
            for a in annotations { annotationIDs.insert(try XCTUnwrap(a["id"] as? Int)) }
            XCTAssertEqual(annotationIDs.count % 5, 0)
        }
        XCTAssertEqual(ids, Array(1...12), "images 1...N split in order into train, val, test")
        XCTAssertEqual(annotationIDs.count, 12 * 5, "annotation ids are unique across the splits")
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: root + "/images")), Set(files),
                       "exactly the listed images")
    }

    /// The same options and seed give the same bytes; another seed gives other scenes.
    func testSynthShapesIsDeterminedByTheSeed() throws {
        try synthShapes("a", seed: 7)
        try synthShapes("b", seed: 7)
        try synthShapes("c", seed: 8)
        func contents(_ root: String) throws -> [String: Data] {
            var files: [String: Data] = [:]
            for sub in ["annotations", "images"] {
                for name in try FileManager.default.contentsOfDirectory(atPath: path("\(root)/\(sub)")) {
                    files["\(sub)/\(name)"] = try Data(contentsOf: URL(fileURLWithPath: path("\(root)/\(sub)/\(name)")))
                }
            }
            return files
        }
        let (a, b, c) = (try contents("a"), try contents("b"), try contents("c"))
        XCTAssertEqual(a.count, 3 + 12)
        XCTAssertEqual(a, b, "seed 7 twice: the same bytes")
        XCTAssertEqual(Set(a.keys), Set(c.keys))
        XCTAssertNotEqual(a["annotations/captions_train.json"], c["annotations/captions_train.json"])
        XCTAssertGreaterThan(a.keys.filter { a[$0] != c[$0] }.count, 6, "seed 8 draws other scenes")
    }

    /// A held-out colour–shape pair is in no train or val scene and in every test scene.
    func testSynthShapesHoldOut() throws {
        let root = try synthShapes("held", count: 20, ["--holdout", "red circle"])
        for split in Self.splits {
            let file = try XCTUnwrap(try readJSON(root + "/annotations/captions_\(split).json") as? [String: Any])
            for image in try XCTUnwrap(file["images"] as? [[String: Any]]) {
                let objects = try XCTUnwrap(image["objects"] as? [[String: Any]])
                let held = objects.contains { $0["color"] as? String == "red" && $0["shape"] as? String == "circle" }
                XCTAssertEqual(held, split == "test", "\(split) image \(image["id"] ?? "?")")
            }
        }
    }

    // MARK: metrics

    /// The committed COCO fixture: the numbers pycocoevalcap gives (scripts/make_metric_fixtures.py).
    func testMetricsMatchPycocoevalcapOnTheFixture() throws {
        let r = try caption(["metrics", "--refs", Fixtures.path("metrics/captions_val.json"),
                             "--hyps", Fixtures.path("metrics/results.json")])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stdoutLines.count, 1)
        let got = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let want = try XCTUnwrap(try readJSON(Fixtures.path("metrics/expected_cli.json")) as? [String: Any])
        XCTAssertEqual(Set(got.keys), ["BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "ROUGE-L", "CIDEr-D", "images"])
        XCTAssertEqual(Set(got.keys), Set(want.keys))
        XCTAssertEqual(got["images"] as? Int, 20)
        for key in want.keys where key != "images" {
            XCTAssertEqual(try XCTUnwrap(got[key] as? Double, key), try XCTUnwrap(want[key] as? Double), accuracy: 1e-9, key)
        }
        let keys = ["BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "ROUGE-L", "CIDEr-D", "images"]
        let positions = keys.map { r.stdout.range(of: "\"\($0)\"")!.lowerBound }
        XCTAssertEqual(positions, positions.sorted(), "keys in the contract's order")
    }

    /// A hypothesis naming an image the annotation file lacks is an input error on the results file.
    func testMetricsRefusesAnImageMissingFromTheReferences() throws {
        let hyps = path("hyps.json")
        try #"[{"image_id": 999999999, "caption": "a red circle"}]"#.write(toFile: hyps, atomically: true, encoding: .utf8)
        let r = try caption(["metrics", "--refs", Fixtures.path("metrics/captions_val.json"), "--hyps", hyps])
        assertFails(r, naming: hyps)
    }

    // MARK: features

    /// `image` U8 H×W×3 (the decoded pixels), `input` F32 3×S×S, `features` F32 L×D: against the PyTorch/Pillow
    /// reference for the compact fixture model (scripts/make_encoder_fixtures.py), written atomically.
    func testFeaturesWritesTheThreeTensorsOfTheContract() throws {
        let image = Fixtures.path("encoders/compact_image.png")
        let out = path("f.safetensors")
        let r = try caption(["features", image, "--out", out, "--weights", Fixtures.path("encoders/compact_model"), "--quiet"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stdout, "")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: tmp.path), ["f.safetensors"], "no temporary file left")
        let file = try SafeTensorsFile(path: out)
        XCTAssertEqual(Set(file.names), ["image", "input", "features"])
        let decoded = try ImageDecoder().decode(path: image)
        XCTAssertEqual(file.info("image")?.dtype, .U8)
        XCTAssertEqual(file.info("image")?.shape, [decoded.height, decoded.width, 3])
        XCTAssertEqual(try file.uint8("image"), decoded.pixels, "the pixels before any resizing")
        XCTAssertEqual(file.info("input")?.dtype, .F32)
        XCTAssertEqual(file.info("input")?.shape, [3, 32, 32])
        XCTAssertEqual(file.info("features")?.dtype, .F32)
        XCTAssertEqual(file.info("features")?.shape, [16, 32], "L = 4×4 grid, D = 32 channels")
        let expected = try SafeTensorsFile(path: Fixtures.path("encoders/compact_expected.safetensors"))
        XCTAssertEqual(try file.uint8("image"), try expected.uint8("image"))
        assertClose(try file.tensor("input"), try expected.tensor("input"), rtol: 1e-6, atol: 1e-6, "input")
        let features = try expected.tensor("features")
        let scale = features.storage.reduce(0) { max($0, abs($1)) }
        assertClose(try file.tensor("features"), features, rtol: 0, atol: 1e-4 * scale, "features")
    }

    /// A captioning model folder works too: its pooled grid and encoder width give L×D.
    func testFeaturesOfACaptioningModelFolder() throws {
        let out = path("tiny.safetensors")
        let r = try caption(["features", Fixtures.path("captioner/tiny_image.png"), "--out", out,
                             "--weights", Fixtures.path("captioner/tiny_model"), "--quiet"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let file = try SafeTensorsFile(path: out)
        XCTAssertEqual(file.info("image")?.shape, [40, 48, 3])
        XCTAssertEqual(file.info("input")?.shape, [3, 32, 32])
        XCTAssertEqual(file.info("features")?.shape, [16, 16], "4×4 adaptive pool of 16 channels")
    }
}
