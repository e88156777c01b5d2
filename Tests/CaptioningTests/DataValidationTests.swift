import BatchCaptioning
import CaptionData
import CaptionMetrics
import CaptionSupport
import CaptionTraining
import Captioning
import SyntheticWorld
import Foundation
import XCTest

/// Every defect of an annotation or results file is one `CaptionError` line naming the file and entry.
final class DataValidationTests: XCTestCase {
    var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("data-validation-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    /// Writes `json` and returns the loader's message with the path shortened to `F`.
    func cocoError(_ json: String) -> String {
        let path = directory.appendingPathComponent("captions_train.json").path
        _ = FileManager.default.createFile(atPath: path, contents: Data(json.utf8))
        do { _ = try COCOCaptionsFile.load(path); return "loaded" } catch let error as CaptionError {
            XCTAssertEqual(error.file, path)
            return "F: " + error.problem
        } catch { return "unexpected \(error)" }
    }

    func resultsError(_ json: String) -> String {
        let path = directory.appendingPathComponent("results.json").path
        _ = FileManager.default.createFile(atPath: path, contents: Data(json.utf8))
        do { _ = try COCOResultsFile.load(path); return "loaded" } catch { return "\(error)".replacingOccurrences(of: path, with: "F") }
    }

    let image = "{\"id\": 1, \"file_name\": \"a.png\"}"

    func testMalformedJSONGivesLineAndColumn() {
        XCTAssertEqual(cocoError("{\"images\": [\n  {\"id\": 1,, \"file_name\": \"a.png\"}\n]}"),
                       "F: malformed JSON: invalid value at line 2, column 12")
        XCTAssertEqual(cocoError("{\"images\": ["), "F: malformed JSON: unexpected end of file during JSON parse")
        XCTAssertEqual(cocoError(""), "F: malformed JSON: unexpected end of file during JSON parse")
    }

    func testMissingAndMistypedFields() {
        XCTAssertEqual(cocoError("{\"annotations\": []}"), "F: \"images\": missing")
        XCTAssertEqual(cocoError("{\"images\": [\(image)]}"), "F: \"annotations\": missing")
        XCTAssertEqual(cocoError("{\"images\": [{\"file_name\": \"a.png\"}], \"annotations\": []}"), "F: images[0].id: missing")
        XCTAssertEqual(cocoError("{\"images\": [{\"id\": 7}], \"annotations\": []}"), "F: images[0] (id 7).file_name: missing")
        XCTAssertEqual(cocoError("{\"images\": [{\"id\": \"7\", \"file_name\": \"a\"}], \"annotations\": []}"),
                       "F: images[0].id: expected an integer, found a string")
        XCTAssertEqual(cocoError("{\"images\": [{\"id\": 1.5, \"file_name\": \"a\"}], \"annotations\": []}"),
                       "F: images[0].id: expected an integer, found a number")
        XCTAssertEqual(cocoError("{\"images\": [\(image)], \"annotations\": [{\"id\": 9, \"image_id\": 1}]}"),
                       "F: annotations[0] (id 9).caption: missing")
        XCTAssertEqual(cocoError("{\"images\": [\(image)], \"annotations\": [{\"id\": 9, \"caption\": \"x\"}]}"),
                       "F: annotations[0] (id 9).image_id: missing")
        XCTAssertEqual(cocoError("{\"images\": [\(image)], \"annotations\": [{\"image_id\": 1, \"caption\": true}]}"),
                       "F: annotations[0].caption: expected a string, found a boolean")
        XCTAssertEqual(cocoError("{\"images\": [\(image), \(image)], \"annotations\": []}"),
                       "F: images[1]: duplicate image id 1 (also images[0])")
        XCTAssertEqual(cocoError("{\"images\": [\(image)], \"annotations\": [{\"id\": 3, \"image_id\": 2, \"caption\": \"x\"}]}"),
                       "F: annotations[0] (id 3): image_id 2 is not in \"images\"")
        XCTAssertEqual(cocoError("{\"images\": [{\"id\": 1, \"file_name\": \"a.png\", \"objects\": [{\"shape\": \"circle\", \"color\": \"red\", \"size\": \"small\", \"bbox\": [1, 2, 3]}]}], \"annotations\": []}"),
                       "F: images[0] (id 1).objects[0].bbox: expected [x, y, width, height], found 3 numbers")
    }

    func testEmptyCaptionsAndUncaptionedImages() {
        XCTAssertEqual(cocoError("{\"images\": [\(image)], \"annotations\": [{\"id\": 4, \"image_id\": 1, \"caption\": \"\"}]}"),
                       "F: annotations[0] (id 4) (image 1): empty caption")
        XCTAssertEqual(cocoError("{\"images\": [\(image)], \"annotations\": [{\"id\": 4, \"image_id\": 1, \"caption\": \" ... \"}]}"),
                       "F: annotations[0] (id 4) (image 1): empty caption (no words in \" ... \")")
        XCTAssertEqual(cocoError("{\"images\": [\(image)], \"annotations\": []}"),
                       "F: images[0] (id 1, a.png): no captions in \"annotations\"")
        XCTAssertEqual(cocoError("{\"images\": [\(image)], \"annotations\": [{\"image_id\": 1, \"caption\": \"a dog\"}]}"), "loaded")
    }

    func testKarpathyValidation() {
        func karpathyError(_ json: String) -> String {
            let path = directory.appendingPathComponent("dataset_coco.json").path
            _ = FileManager.default.createFile(atPath: path, contents: Data(json.utf8))
            do { _ = try KarpathySplitFile.load(path); return "loaded" } catch { return "\(error)".replacingOccurrences(of: path, with: "F") }
        }
        let ok = "{\"tokens\": [\"a\", \"dog\"], \"raw\": \"A dog.\"}"
        XCTAssertEqual(karpathyError("{\"images\": [{\"filename\": \"x.jpg\", \"split\": \"train\", \"cocoid\": 5, \"sentences\": [\(ok)]}]}"), "loaded")
        XCTAssertEqual(karpathyError("{\"images\": [{\"filename\": \"x.jpg\", \"cocoid\": 5, \"sentences\": [\(ok)]}]}"),
                       "F: images[0] (id 5).split: missing")
        XCTAssertEqual(karpathyError("{\"images\": [{\"filename\": \"x.jpg\", \"split\": \"train\", \"cocoid\": 5, \"sentences\": [\(ok), {\"tokens\": [], \"raw\": \"\"}]}]}"),
                       "F: images[0] (id 5).sentences[1]: empty caption (no tokens)")
        XCTAssertEqual(karpathyError("{\"images\": [{\"filename\": \"x.jpg\", \"split\": \"val\", \"sentences\": []}]}"),
                       "F: images[0] (id 0): no sentences")
    }

    func testResultsFileValidation() {
        XCTAssertEqual(resultsError("[{\"image_id\": 1, \"caption\": \"a\"}]"), "loaded")
        XCTAssertEqual(resultsError("[]"), "F: no results (empty array)")
        XCTAssertEqual(resultsError("{\"image_id\": 1}"), "F: top level: expected an array, found an object")
        XCTAssertEqual(resultsError("[{\"image_id\": 1, \"caption\": \"a\"}, {\"caption\": \"b\"}]"), "F: [1].image_id: missing")
        XCTAssertEqual(resultsError("[{\"image_id\": 1, \"caption\": \"a\"}, {\"image_id\": 1, \"caption\": \"b\"}]"),
                       "F: [1]: a second caption for image_id 1 (first at [0])")
    }

    func testMetricsFilesNameTheUnknownImage() throws {
        let refs = directory.appendingPathComponent("captions_val.json").path
        let hyps = directory.appendingPathComponent("results.json").path
        _ = FileManager.default.createFile(atPath: refs, contents: Data("{\"images\": [\(image)], \"annotations\": [{\"image_id\": 1, \"caption\": \"a dog\"}]}".utf8))
        _ = FileManager.default.createFile(atPath: hyps, contents: Data("[{\"image_id\": 1, \"caption\": \"a dog\"}, {\"image_id\": 8, \"caption\": \"x\"}]".utf8))
        XCTAssertThrowsError(try COCOMetrics.evaluate(annotationFile: refs, resultsFile: hyps)) { error in
            XCTAssertEqual("\(error)", "\(hyps): [1]: image_id 8 is not in captions_val.json")
        }
        XCTAssertThrowsError(try COCOMetrics.evaluate(annotationFile: refs + ".absent", resultsFile: hyps)) { error in
            XCTAssertEqual("\(error)", "\(refs).absent: no such file")
        }
        XCTAssertThrowsError(try COCOMetrics.evaluate(references: [1: ["a"]], hypotheses: [:])) { error in
            XCTAssertEqual((error as? CaptionError)?.problem, "no captions to score")
        }
    }
}
