import Foundation
import Imaging
import TensorCore
import TestSupport
import XCTest

final class PreprocessTests: XCTestCase {
    /// torchvision Resize → CenterCrop → ToTensor → Normalize outputs.
    func testPreprocessingMatchesTorchvision() throws {
        for case_ in ImageManifest.shared.preprocess {
            let source = try ImageManifest.rgb(case_.source, width: case_.source_width, height: case_.source_height)
            let recipe = Preprocessing(resizeWidth: case_.resize[0], resizeHeight: case_.resize[1],
                                       cropWidth: case_.crop?[0], cropHeight: case_.crop?[1],
                                       mean: case_.mean, std: case_.std)
            XCTAssertNoThrow(try recipe.validate())
            let raw = try ImageManifest.bytes(case_.tensor)
            let floats = raw.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            let expected = Tensor(shape: case_.shape, storage: floats)
            let actual = recipe.tensor(source)
            XCTAssertEqual(actual.shape, [3, recipe.outputHeight, recipe.outputWidth])
            assertClose(actual, expected, rtol: 0, atol: 1e-6, case_.tensor)
            XCTAssertEqual(actual.maxAbsDifference(expected), 0, "\(case_.tensor): expected bit-exact")

            // Writing straight into a batch slot gives the same numbers.
            var batch = [Float](repeating: .nan, count: 2 * actual.count)
            batch.withUnsafeMutableBufferPointer { recipe.write(source, into: $0.baseAddress! + actual.count) }
            XCTAssertEqual(Array(batch[actual.count...]), actual.storage)
        }
    }

    /// (v/255 − mean)/std by hand for a 2×1 image.
    func testNormaliseByHand() {
        let image = RGBImage(width: 2, height: 1, pixels: [0, 128, 255, 10, 20, 30])
        let t = image.normalizedTensor()
        XCTAssertEqual(t.shape, [3, 1, 2])
        let mean: [Float] = [0.485, 0.456, 0.406], std: [Float] = [0.229, 0.224, 0.225]
        let expected: [[Float]] = [[0, 10], [128, 20], [255, 30]]  // per channel, per pixel
        for c in 0..<3 {
            for x in 0..<2 {
                let hand = (expected[c][x] / 255 - mean[c]) / std[c]
                XCTAssertEqual(t[c, 0, x], hand, accuracy: 1e-6)
            }
        }
        XCTAssertEqual(t[0, 0, 0], -2.117904, accuracy: 1e-5)  // (0 − 0.485)/0.229
        XCTAssertEqual(t[2, 0, 0], 2.64, accuracy: 1e-5)       // (1 − 0.406)/0.225
    }

    /// torchvision CenterCrop offsets use Python's round-half-to-even, and pad with black.
    func testCenterCropMatchesTorchvisionRules() {
        var pixels = [UInt8]()
        for y in 0..<5 { for x in 0..<6 { pixels += [UInt8(x), UInt8(y), 9] } }
        let image = RGBImage(width: 6, height: 5, pixels: pixels)
        // (6−3)/2 = 1.5 → 2 ; (5−2)/2 = 1.5 → 2
        let crop = image.centerCropped(width: 3, height: 2)
        XCTAssertEqual(Array(crop.pixels[0..<3]), [2, 2, 9])
        // (6−1)/2 = 2.5 → 2 ; (5−4)/2 = 0.5 → 0
        XCTAssertEqual(Array(image.centerCropped(width: 1, height: 4).pixels[0..<3]), [2, 0, 9])
        // Larger than the image: 1 column of black on the left, 2 on the right.
        let padded = image.centerCropped(width: 9, height: 5)
        XCTAssertEqual(Array(padded.pixels[0..<6]), [0, 0, 0, 0, 0, 9])
        XCTAssertEqual(Array(padded.pixels[(7 * 3)..<(9 * 3)]), [0, 0, 0, 0, 0, 0])
    }

    func testValidateRejectsBadRecipes() {
        XCTAssertThrowsError(try Preprocessing(resizeWidth: 0).validate())
        XCTAssertThrowsError(try Preprocessing(cropWidth: 224).validate())
        XCTAssertThrowsError(try Preprocessing(std: [1, 0, 1]).validate())
        XCTAssertThrowsError(try Preprocessing(mean: [0.5]).validate())
        XCTAssertNoThrow(try Preprocessing().validate())
    }

    func testPreprocessingRoundTripsThroughJSON() throws {
        let recipe = Preprocessing(resizeWidth: 256, resizeHeight: 256, cropWidth: 224, cropHeight: 224)
        let json = try JSONEncoder().encode(recipe)
        XCTAssertTrue(String(decoding: json, as: UTF8.self).contains("\"crop_width\":224"))
        XCTAssertEqual(try JSONDecoder().decode(Preprocessing.self, from: json), recipe)
    }
}
