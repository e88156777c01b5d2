import CaptionSupport
import Foundation
import Imaging
import XCTest

final class BadInputTests: XCTestCase {
    /// Each broken fixture fails with the recorded `ImageProblem` (never a crash): its kind and the start of
    /// its text, which tells the cases apart. The message is one line that names the file.
    func testBadFixturesGiveTheRightError() throws {
        for case_ in ImageManifest.shared.bad {
            let path = ImageManifest.path(case_.file)
            XCTAssertThrowsError(try ImageDecoder().decode(path: path), case_.file) { error in
                guard let error = error as? CaptionError else { return XCTFail("\(case_.file): \(error) is not a CaptionError") }
                guard let expected = Self.expected[case_.error] else { return XCTFail("unknown recorded error \(case_.error)") }
                XCTAssertEqual(error.kind, expected.kind, "\(case_.file): \(error)")
                XCTAssertNotNil(error.problem.range(of: expected.problem, options: [.regularExpression, .anchored]),
                                "\(case_.file): \(error) is not \(case_.error)")
                XCTAssertEqual(error.file, path)
                XCTAssertTrue(error.description.hasPrefix(path + ": "), error.description)
                XCTAssertFalse(error.description.contains("\n"), error.description)
            }
        }
    }

    func testMessagesReadWell() throws {
        func message(_ name: String) -> String {
            do {
                _ = try ImageDecoder().decode(path: ImageManifest.path(name))
                return "decoded"
            } catch let error as CaptionError {
                return error.problem
            } catch {
                return "\(error)"
            }
        }
        XCTAssertEqual(message("bad_empty.jpg"), "file is empty")
        XCTAssertEqual(message("bad_text.jpg"), "not a JPEG or PNG file")
        XCTAssertEqual(message("bad_huge.jpg"), "image is 60000×60000 (3.6 gigapixels), over the limit of 100 megapixels")
        XCTAssertEqual(message("bad_huge.png"), "image is 60000×60000 (3.6 gigapixels), over the limit of 100 megapixels")
        XCTAssertEqual(message("bad_truncated.jpg"), "truncated JPEG file: Premature end of JPEG file")
        XCTAssertEqual(message("bad_crc_ihdr.png"), "corrupt PNG: IHDR: CRC error")
        XCTAssertTrue(message("bad_corrupt.jpg").hasPrefix("truncated or corrupt JPEG: "), message("bad_corrupt.jpg"))
        XCTAssertEqual(message("no-such-file.jpg"), "no such file")
        XCTAssertEqual(ImageProblem.tooLarge(width: 20000, height: 10000, limit: 100_000_000).problem,
                       "image is 20000×10000 (200 megapixels), over the limit of 100 megapixels")
        XCTAssertEqual(ImageProblem.tooLarge(width: 4000, height: 3000, limit: 1_500_000).problem,
                       "image is 4000×3000 (12 megapixels), over the limit of 1.5 megapixels")
    }

    func testFileSystemErrors() throws {
        let missing = ImageManifest.path("no-such-file.jpg")
        XCTAssertThrowsError(try ImageDecoder().decode(path: missing)) { error in
            XCTAssertEqual(error as? CaptionError, ImageProblem.fileNotFound.error(missing))
        }
        XCTAssertThrowsError(try ImageDecoder().decode(path: ImageManifest.path(""))) { error in
            XCTAssertEqual(error as? CaptionError, ImageProblem.isDirectory.error(ImageManifest.path("")))
        }
        XCTAssertThrowsError(try ImageDecoder().decode(bytes: [UInt8]())) { error in
            XCTAssertEqual(error as? CaptionError, ImageProblem.emptyFile.error("<memory>"))
        }
        // Root reads any file regardless of its mode, so this check only means something otherwise.
        if geteuid() != 0 {
            let path = NSTemporaryDirectory() + "imaging-unreadable-\(getpid()).jpg"
            try Data([0xFF, 0xD8, 0xFF]).write(to: URL(fileURLWithPath: path))
            defer { unlink(path) }
            chmod(path, 0)
            XCTAssertThrowsError(try ImageDecoder().decode(path: path)) { error in
                XCTAssertEqual(error as? CaptionError, ImageProblem.permissionDenied.error(path))
                XCTAssertEqual((error as? CaptionError)?.problem, "cannot read file: permission denied")
            }
        }
    }

    /// Every prefix of a valid file fails cleanly or decodes; none crashes or hangs.
    func testEveryPrefixOfSmallFilesFailsCleanly() throws {
        for name in ["jpeg_progressive.jpg", "png_rgb8_interlaced.png", "jpeg_orient6.jpg", "jpeg_ycck.jpg"] {
            let bytes = try ImageManifest.bytes(name)
            for length in stride(from: 0, to: bytes.count, by: max(1, bytes.count / 97)) {
                do {
                    _ = try ImageDecoder().decode(bytes: Array(bytes[..<length]), name: name)
                } catch let error as CaptionError {
                    XCTAssertFalse(error.problem.isEmpty)
                }
            }
        }
    }

    /// The kind and the problem text (an anchored pattern) of each `ImageProblem` case the manifest records by name.
    static let expected: [String: (kind: CaptionError.Kind, problem: String)] = [
        "fileNotFound": (.notFound, "no such file$"),
        "permissionDenied": (.io, "cannot read file: permission denied$"),
        "isDirectory": (.unsupported, "is a directory, not an image file$"),
        "unreadable": (.io, "cannot read file: "),
        "emptyFile": (.corrupt, "file is empty$"),
        "unknownFormat": (.unsupported, "not a JPEG or PNG file$"),
        "truncated": (.corrupt, "truncated (JPEG|PNG) file: "),
        "corrupt": (.corrupt, "(truncated or corrupt JPEG|corrupt PNG): "),
        "tooLarge": (.tooLarge, "image is [0-9]+×[0-9]+ \\(.*\\), over the limit of "),
        "unsupported": (.unsupported, "unsupported image: "),
        "outOfMemory": (.io, "out of memory while decoding$"),
    ]
}
