import Imaging
import TensorCore
import XCTest

final class ResizeTests: XCTestCase {
    /// Pillow `Image.resize((w, h), Image.BILINEAR)` outputs, up and down, one axis or both.
    func testResizeMatchesPillow() throws {
        var worst = 0, differing = 0
        for case_ in ImageManifest.shared.resize {
            let source = try ImageManifest.rgb(case_.source, width: case_.source_width, height: case_.source_height)
            let expected = try ImageManifest.rgb(case_.rgb, width: case_.width, height: case_.height)
            let resized = source.resized(width: case_.width, height: case_.height)
            XCTAssertEqual(resized.width, case_.width)
            XCTAssertEqual(resized.height, case_.height)
            let (maxDiff, count) = pixelDifference(resized, expected)
            XCTAssertLessThanOrEqual(maxDiff, 1, "\(case_.rgb): \(count) bytes differ, by up to \(maxDiff)")
            XCTAssertEqual(count, 0, "\(case_.rgb): \(count) bytes differ from Pillow, by up to \(maxDiff)")
            worst = max(worst, maxDiff)
            differing += count
        }
        print("ResizeTests: \(ImageManifest.shared.resize.count) resizes, max diff \(worst), \(differing) bytes differ")
    }

    func testSameSizeIsIdentity() throws {
        let source = try ImageManifest.rgb("resize_src_b.rgb", width: 37, height: 29)
        XCTAssertEqual(source.resized(width: 37, height: 29), source)
    }

    func testCoefficientsSumToOneAndCoverTheInput() {
        for (inSize, outSize) in [(97, 16), (29, 80), (640, 256), (480, 256), (5, 5), (1, 7), (7, 1)] {
            let c = ResampleCoefficients(inSize: inSize, outSize: outSize)
            for i in 0..<outSize {
                let n = Int(c.count[i])
                let sum = c.weights[i * c.taps ..< i * c.taps + n].reduce(0, +)
                // Rounding each weight to 22 bits leaves the sum within a few units of 2²².
                XCTAssertLessThanOrEqual(abs(Int(sum) - (1 << 22)), n, "\(inSize)→\(outSize) sample \(i)")
                XCTAssertGreaterThanOrEqual(c.first[i], 0)
                XCTAssertLessThanOrEqual(Int(c.first[i]) + n, inSize)
            }
        }
    }

    /// A constant image stays constant at any size.
    func testConstantImageStaysConstant() {
        let gray = RGBImage(width: 13, height: 7, pixels: [UInt8](repeating: 200, count: 13 * 7 * 3))
        for (w, h) in [(1, 1), (5, 3), (40, 21), (13, 30)] {
            XCTAssertTrue(gray.resized(width: w, height: h).pixels.allSatisfy { $0 == 200 }, "\(w)×\(h)")
        }
    }
}
