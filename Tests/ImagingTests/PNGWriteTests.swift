import CaptionSupport
import Foundation
import Imaging
import XCTest

final class PNGWriteTests: XCTestCase {
    private var folder: String!

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "imaging-png-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: folder)
    }

    func testWriteThenReadRoundTrips() throws {
        let source = try ImageManifest.rgb("resize_src_a.rgb", width: 97, height: 73)
        for level in [0, 1, 6, 9] {
            let path = folder + "/out-\(level).png"
            try source.writePNG(to: path, compressionLevel: level)
            XCTAssertEqual(try ImageDecoder().decode(path: path), source, "level \(level)")
        }
        let tiny = RGBImage(width: 1, height: 1, pixels: [1, 2, 3])
        XCTAssertEqual(try ImageDecoder().decode(bytes: try tiny.pngData()), tiny)
    }

    func testWriteReplacesAtomicallyAndLeavesNoTemporaryFiles() throws {
        let path = folder + "/frame.png"
        try RGBImage(width: 4, height: 3).writePNG(to: path)
        let white = RGBImage(width: 2, height: 2, pixels: [UInt8](repeating: 255, count: 12))
        try white.writePNG(to: path)
        XCTAssertEqual(try ImageDecoder().decode(path: path), white)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder), ["frame.png"])
    }

    func testWriteFailuresAreErrorsNamingTheFile() throws {
        let missing = folder + "/no/such/folder/out.png"
        XCTAssertThrowsError(try RGBImage(width: 2, height: 2).writePNG(to: missing)) { error in
            guard let error = error as? CaptionError else { return XCTFail("\(error)") }
            XCTAssertEqual(error.file, missing)
            XCTAssertTrue(error.problem.hasPrefix("cannot write file: "), error.problem)
            XCTAssertEqual(error.kind, .io)
        }
        XCTAssertThrowsError(try RGBImage(width: 0, height: 0).writePNG(to: folder + "/empty.png")) { error in
            XCTAssertEqual(error as? CaptionError,
                           ImageProblem.invalidArgument("cannot write a 0×0 image as PNG").error(folder + "/empty.png"))
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/empty.png"))
        // A directory in the way: rename fails and the temporary file is cleaned up.
        try FileManager.default.createDirectory(atPath: folder + "/taken.png", withIntermediateDirectories: false)
        XCTAssertThrowsError(try RGBImage(width: 2, height: 2).writePNG(to: folder + "/taken.png"))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder).sorted(), ["taken.png"])
    }
}
