import CaptionSupport
import Foundation
import Imaging
import XCTest

final class DecodeTests: XCTestCase {
    /// Every fixture decodes to Pillow's `exif_transpose(open(f)).convert("RGB")` pixels:
    /// PNG exactly, JPEG within ±2 levels (in practice exactly: both use libjpeg-turbo's ISLOW IDCT
    /// and fancy upsampling). 16-bit gray PNGs are the exception: their expected pixels are the
    /// high bytes (v >> 8), computed by the fixture script, where Pillow would clip to 255.
    func testDecodedPixelsMatchPillow() throws {
        let decoder = ImageDecoder()
        var worstJPEG = 0
        for case_ in ImageManifest.shared.decode {
            let image = try decoder.decode(path: ImageManifest.path(case_.file))
            XCTAssertEqual(image.width, case_.width, case_.file)
            XCTAssertEqual(image.height, case_.height, case_.file)
            guard image.width == case_.width, image.height == case_.height else { continue }
            let expected = try ImageManifest.rgb(case_.rgb, width: case_.width, height: case_.height)
            let (maxDiff, differing) = pixelDifference(image, expected)
            if case_.file.hasSuffix(".png") {
                XCTAssertEqual(maxDiff, 0, "\(case_.file): \(differing) bytes differ from Pillow")
            } else {
                worstJPEG = max(worstJPEG, maxDiff)
                XCTAssertLessThanOrEqual(maxDiff, 2, "\(case_.file): \(differing) bytes differ, by up to \(maxDiff)")
            }
        }
        print("DecodeTests: \(ImageManifest.shared.decode.count) files, largest JPEG difference from Pillow \(worstJPEG)")
    }

    func testInfoReportsOrientationAndStoredSize() throws {
        let decoder = ImageDecoder()
        for orientation in 1...8 {
            let info = try decoder.info(path: ImageManifest.path("jpeg_orient\(orientation).jpg"))
            XCTAssertEqual(info.format, .jpeg)
            XCTAssertEqual(info.orientation, orientation)
            XCTAssertEqual(info.storedWidth, 37)
            XCTAssertEqual(info.storedHeight, 29)
            XCTAssertEqual(info.width, orientation >= 5 ? 29 : 37)
        }
        XCTAssertEqual(try decoder.info(path: ImageManifest.path("jpeg_orient9.jpg")).orientation, 1)
        XCTAssertEqual(try decoder.info(path: ImageManifest.path("jpeg_orient8_xmp.jpg")).orientation, 8)
        XCTAssertEqual(try decoder.info(path: ImageManifest.path("png_orient6_exif.png")).orientation, 6)
        let cmyk = try decoder.info(path: ImageManifest.path("jpeg_cmyk.jpg"))
        XCTAssertEqual(cmyk.components, 4)
        let gray16 = try decoder.info(path: ImageManifest.path("png_gray16.png"))
        XCTAssertEqual(gray16.format, .png)
        XCTAssertEqual(gray16.bitDepth, 16)
    }

    /// 16-bit PNGs of all four colour types keep the high byte of each sample (v >> 8) and drop
    /// alpha; 16-bit gray is no longer Pillow's I;16 conversion, which clips everything above 255.
    func testSixteenBitPNGsKeepTheHighByte() throws {
        let decoder = ImageDecoder()
        for (kind, components) in [("gray", 1), ("ga", 2), ("rgb", 3), ("rgba", 4)] {
            let name = "png16_\(kind).png"
            let info = try decoder.info(path: ImageManifest.path(name))
            XCTAssertEqual(info.bitDepth, 16, name)
            XCTAssertEqual(info.components, components, name)
            XCTAssertEqual(info.width, 23, name)
            XCTAssertEqual(info.height, 19, name)
            let image = try decoder.decode(path: ImageManifest.path(name))
            let expected = try ImageManifest.rgb("png16_\(kind).rgb", width: 23, height: 19)
            XCTAssertEqual(pixelDifference(image, expected).count, 0, name)
        }
        // Full-range 16-bit gray: under Pillow's clip almost every byte would be 255.
        let gray = try decoder.decode(path: ImageManifest.path("png_gray16.png"))
        let white = gray.pixels.filter { $0 == 255 }.count
        XCTAssertLessThan(white, gray.pixels.count / 10, "16-bit gray decoded mostly white")
        // Values below 600 have high bytes 0...2: neither the low byte nor a clip.
        let small = try decoder.decode(path: ImageManifest.path("png_gray16_small.png"))
        XCTAssertLessThanOrEqual(small.pixels.max() ?? 255, 2)
    }

    func testFormatIsSniffedFromContentNotName() throws {
        XCTAssertEqual(ImageFormat.sniff(path: ImageManifest.path("png_named.jpg")), .png)
        XCTAssertEqual(ImageFormat.sniff(path: ImageManifest.path("jpeg_gray.jpg")), .jpeg)
        XCTAssertNil(ImageFormat.sniff(path: ImageManifest.path("bad_text.jpg")))
        XCTAssertNil(ImageFormat.sniff(path: ImageManifest.path("bad_empty.jpg")))
        XCTAssertNil(ImageFormat.sniff(path: ImageManifest.path("no-such-file.png")))
        XCTAssertEqual(ImageFormat.sniff([0xFF, 0xD8, 0xFF]), .jpeg)
        XCTAssertNil(ImageFormat.sniff([0xFF, 0xD8]))
        XCTAssertNil(ImageFormat.sniff([UInt8]()))
    }

    func testDecodingFromMemoryMatchesDecodingTheFile() throws {
        let name = "jpeg_progressive.jpg"
        let fromFile = try ImageDecoder().decode(path: ImageManifest.path(name))
        let bytes = try ImageManifest.bytes(name)
        XCTAssertEqual(try ImageDecoder().decode(bytes: bytes), fromFile)
        XCTAssertEqual(try ImageDecoder().decode(data: Data(bytes)), fromFile)
        XCTAssertEqual(try RGBImage(contentsOfFile: ImageManifest.path(name)), fromFile)
    }

    /// The decoder keeps no shared state: decoding on many threads at once gives the same pixels.
    func testConcurrentDecodingIsSafe() throws {
        let names = ImageManifest.shared.decode.map(\.file)
        let expected = try names.map { try ImageDecoder().decode(path: ImageManifest.path($0)) }
        let mismatches = UnsafeMutableBufferPointer<Int>.allocate(capacity: names.count * 4)
        defer { mismatches.deallocate() }
        mismatches.initialize(repeating: 0)
        DispatchQueue.concurrentPerform(iterations: names.count * 4) { i in
            let image = try? ImageDecoder().decode(path: ImageManifest.path(names[i % names.count]))
            mismatches[i] = image == expected[i % names.count] ? 0 : 1
        }
        XCTAssertEqual(mismatches.reduce(0, +), 0)
    }

    func testPixelLimitIsConfigurable() throws {
        let path = ImageManifest.path("jpeg_baseline.jpg")  // 37×29 = 1073 pixels
        XCTAssertNoThrow(try ImageDecoder(maxPixels: 1073).decode(path: path))
        XCTAssertThrowsError(try ImageDecoder(maxPixels: 1072).decode(path: path)) { error in
            XCTAssertEqual(error as? CaptionError, ImageProblem.tooLarge(width: 37, height: 29, limit: 1072).error(path))
        }
        XCTAssertNoThrow(try ImageDecoder(maxPixels: 0).decode(path: path), "0 means no limit")
    }
}
