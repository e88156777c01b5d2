@testable import BatchCaptioning
@testable import CaptionData
@testable import CaptionMetrics
@testable import CaptionSupport
@testable import CaptionTraining
@testable import Captioning
@testable import SyntheticWorld
import Foundation
import TestSupport
import XCTest

/// The pieces of `caption batch` in process: the folder walk, the CSV reader that finds a torn tail, resuming an
/// output file, and the pipeline itself on the tiny model (every file once, whatever the batch size and jobs).
final class BatchPipelineTests: XCTestCase {
    var tmp: URL!

    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("batch-pipeline-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp.appendingPathComponent("d/e"), withIntermediateDirectories: true)
        for name in ["b", "a", "d/z", "d/e/y", "C"] {
            FileManager.default.createFile(atPath: tmp.appendingPathComponent(name).path, contents: Data("x".utf8))
        }
        try FileManager.default.createSymbolicLink(atPath: tmp.appendingPathComponent("d/e/up").path, withDestinationPath: "../..")
        try FileManager.default.createSymbolicLink(atPath: tmp.appendingPathComponent("side").path, withDestinationPath: "d/e")
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: tmp) }

    func testSortedWalkIsDepthFirstInByteOrderAndReportsLoops() throws {
        let root = tmp.path + "/"  // a trailing slash gives the same paths
        let entries = Array(try FolderWalk(root: root, recursive: true, sorted: true))
        let r = tmp.path
        XCTAssertEqual(entries.map(\.path), ["C", "a", "b", "d/e/up", "d/e/y", "d/z", "side/up", "side/y"].map { "\(r)/\($0)" })
        XCTAssertEqual(entries[3], .problem("\(r)/d/e/up", "symbolic link loop: leads back to \(r); not followed"))
        // side → d/e is not a loop (d/e is not an ancestor of side): walked under its own name.
        XCTAssertEqual(entries[6], .problem("\(r)/side/up", "symbolic link loop: leads back to \(r); not followed"))
        XCTAssertEqual(Array(try FolderWalk(root: r, recursive: false, sorted: true)).map(\.path), ["C", "a", "b"].map { "\(r)/\($0)" })
        let unsorted = Array(try FolderWalk(root: r, recursive: true, sorted: false)).map(\.path)
        XCTAssertEqual(unsorted.sorted(), entries.map(\.path).sorted(), "the same entries in the file system's order")
        XCTAssertThrowsError(try FolderWalk(root: "\(r)/a", recursive: true, sorted: false)) {
            XCTAssertEqual("\($0)", "\(r)/a: not a folder")
        }
    }

    func testCSVRecordsStopAtATornTail() {
        let text = "image,caption,log_prob,error\n\"a,1.png\",\"say \"\"hi\"\"\nthere\",-1.5,\nb.png,,,bad\n\"c.png\",\"half"
        let (records, end) = CSV.records(Array(text.utf8))
        XCTAssertEqual(records, [["image", "caption", "log_prob", "error"], ["a,1.png", "say \"hi\"\nthere", "-1.5", ""],
                                 ["b.png", "", "", "bad"]])
        XCTAssertEqual(end, text.utf8.count - "\"c.png\",\"half".utf8.count)
        XCTAssertEqual(CSV.line(["a,1.png", "say \"hi\"\nthere", "-1.5", ""]), "\"a,1.png\",\"say \"\"hi\"\"\nthere\",-1.5,\n")
    }

    func testResumeReadsRecordsAndCutsTheTornLine() throws {
        let out = tmp.appendingPathComponent("out.jsonl").path
        let good = "{\"image\": \"x/1.png\", \"error\": \"file is empty\"}\n{\"image\": \"x/2.png\", \"caption\": \"a\", \"tokens\": [\"a\"], \"log_prob\": -1}\n"
        try (good + "{\"image\": \"x/3.p").write(toFile: out, atomically: true, encoding: .utf8)
        let output = try BatchOutput(path: out, format: .jsonl, resume: true)
        XCTAssertEqual(output.recorded, ["x/1.png", "x/2.png"])
        XCTAssertEqual(output.repairedBytes, "{\"image\": \"x/3.p".utf8.count)
        try output.write(.failure(image: "x/3.png", error: "not a JPEG or PNG file"))
        XCTAssertEqual(try String(contentsOfFile: out, encoding: .utf8),
                       good + "{\"image\": \"x/3.png\", \"error\": \"not a JPEG or PNG file\"}\n")
        // Without --resume the file starts over.
        _ = try BatchOutput(path: out, format: .jsonl, resume: false)
        XCTAssertEqual(try String(contentsOfFile: out, encoding: .utf8), "")
    }

    func testPipelineRecordsEveryFileOnceWithAnyBatchSizeAndJobs() throws {
        let images = tmp.appendingPathComponent("images")
        try FileManager.default.createDirectory(at: images, withIntermediateDirectories: true)
        for i in 0..<23 {
            let name = images.appendingPathComponent("\(i).png").path
            if i % 7 == 3 {
                FileManager.default.createFile(atPath: name, contents: Data("text".utf8))
            } else {
                try FileManager.default.copyItem(atPath: Fixtures.path("captioner/tiny_image.png"), toPath: name)
            }
        }
        let captioner = try Captioner(modelFolder: Fixtures.path("captioner/tiny_model"))
        let single = try captioner.caption(imagePath: Fixtures.path("captioner/tiny_image.png"))
        for (batch, jobs, sorted) in [(1, 1, false), (4, 3, true), (32, 2, false)] {
            var options = BatchOptions()
            options.batchSize = batch
            options.jobs = jobs
            options.sorted = sorted
            let out = tmp.appendingPathComponent("run-\(batch).jsonl").path
            var calls = 0
            let summary = try BatchCaptioner(captioner: captioner, options: options)
                .run(folder: images.path, output: try BatchOutput(path: out, format: .jsonl, resume: false)) { _ in calls += 1 }
            XCTAssertEqual(summary.captioned, 20)
            XCTAssertEqual(summary.failed, 3)
            XCTAssertEqual(calls, 23)
            let lines = try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n")
            let objects = try lines.map { try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
            let paths = objects.map { $0["image"] as! String }
            XCTAssertEqual(Set(paths).count, 23)
            if sorted { XCTAssertEqual(paths, paths.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }) }
            for o in objects where o["error"] == nil {
                XCTAssertEqual(o["tokens"] as? [String], single.tokens, "batch \(batch): the same caption as one image alone")
            }
        }
    }
}
