import Foundation
import TensorCore
import XCTest
@testable import Video

/// `caption video eval`'s baselines on hand-made sequences whose losses are known in closed form.
final class EvaluationTests: XCTestCase {
    /// Two 4-pixel sequences, T = 2 observed + K = 2 future frames.
    static let bytes: [[UInt8]] = [
        [0, 255, 0, 0,   0, 0, 255, 0,   0, 0, 0, 255,   255, 0, 0, 0],
        [255, 255, 0, 0, 255, 255, 0, 0, 255, 255, 0, 0, 255, 255, 0, 0],
    ]

    func model(_ config: VideoModelConfig) throws -> VideoAutoencoder {
        let m = try VideoAutoencoder(config: config)
        m.initialize(seed: 1)
        return m
    }

    func testBCEBaselinesWithTheirBestClamp() throws {
        let data = VideoDataset(dimension: 4, names: ["a", "b"], byteSequences: Self.bytes)
        let config = VideoModelConfig(frameSize: 2, hiddenSize: 3, embeddingSize: 0, observedFrames: 2, futureFrames: 2)
        let report = try VideoEvaluation.evaluate(try model(config), data, batchSize: 1)
        XCTAssertEqual(report.sequences, 2)
        XCTAssertEqual(report.loss, "bce")
        // Copy-last in sequence a misses 2 pixels in each of frames 0, 2, 3 (frame 1 is the copy), b misses
        // none: per frame on average (3·2 misses over 4 frames and 2 sequences) costs −log ε each, plus −log(1−ε)
        // for each pixel predicted right. Its ε is the grid value minimising that.
        let eps = report.baselineEpsilon!["reconstruction"]!.copyLast
        let grid = (0...66).map { pow(10.0, -7.0 + Double($0) * 0.1) }.filter { $0 <= 0.5 }
        XCTAssertTrue(grid.contains { abs($0 - eps) < 1e-12 })
        // Reconstruction block = frames 0, 1: sequence a misses 2 pixels in frame 0 only.
        let misses = 2.0, hits = 2.0 * 4 * 2 - misses
        let expected = (misses * -log(eps) + hits * -log(1 - eps)) / 4    // 2 frames × 2 sequences
        XCTAssertEqual(report.reconstruction.copyLast, expected, accuracy: 1e-9)
        for e in grid { XCTAssertLessThanOrEqual(expected, (misses * -log(e) + hits * -log(1 - e)) / 4 + 1e-12) }
        // The model's number is the mean of its per-frame losses.
        let perFrame = report.perFrame["reconstruction"]!.model!
        XCTAssertEqual(report.reconstruction.model!, perFrame.reduce(0, +) / 2, accuracy: 1e-9)
        XCTAssertNotNil(report.future)
    }

    func testSquaredErrorBaselines() throws {
        let floats: [[Float]] = [[1, 0, 3, 0, 5, 1, 7, 1], [0, 0, 0, 0, 2, 2, 2, 2]]    // D = 2, 4 frames
        let data = VideoDataset(dimension: 2, names: ["a", "b"], floatSequences: floats)
        let config = VideoModelConfig(input: .features, featureDimension: 2, hiddenSize: 3, embeddingSize: 0,
                                      observedFrames: 2, futureFrames: 2)
        let report = try VideoEvaluation.evaluate(try model(config), data)
        XCTAssertEqual(report.loss, "mse")
        XCTAssertNil(report.baselineEpsilon)
        // a: last observed (3, 0), mean (2, 0); b: last (0, 0), mean (0, 0).
        // copy-last, reconstruction frames: a: (1,0)→4, (3,0)→0; b: 0, 0 → mean 1.
        XCTAssertEqual(report.reconstruction.copyLast, 1, accuracy: 1e-12)
        // mean-frame, reconstruction: a: 1 + 1; b: 0 → 2/4.
        XCTAssertEqual(report.reconstruction.meanFrame, 0.5, accuracy: 1e-12)
        // copy-last, future: a: (5,1)→4+1, (7,1)→16+1; b: (2,2)→8, 8 → (5 + 17 + 8 + 8)/4.
        XCTAssertEqual(report.future!.copyLast, 38.0 / 4, accuracy: 1e-12)
    }

    func testTooShortSequencesAreReported() throws {
        let data = VideoDataset(dimension: 4, names: ["short"], byteSequences: [[UInt8](repeating: 0, count: 12)])
        let config = VideoModelConfig(frameSize: 2, hiddenSize: 3, embeddingSize: 0, observedFrames: 2, futureFrames: 2)
        XCTAssertThrowsError(try VideoEvaluation.evaluate(try model(config), data)) { error in
            XCTAssertEqual("\(error)", "short: has 3 frames, the model needs 4")
        }
    }
}
