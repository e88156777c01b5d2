import Foundation
import TensorCore
import XCTest
@testable import Video

/// The vectorised loss kernels against a Double-precision reference.
final class FrameLossTests: XCTestCase {
    func testFastMathMatchesLibm() {
        var worstExp = 0.0, worstLog = 0.0
        for i in 0..<20_000 {
            let x = -Float(i) * 0.005                        // 0 … −100
            let e = FastMath.expNonPositive(SIMD8(repeating: x))[0]
            let reference = Foundation.exp(Double(max(x, -87.3)))
            worstExp = max(worstExp, abs(Double(e) - reference) / reference)
            let u = Float(i) / 20_000                        // 0 … 1
            let l = FastMath.log1pUnit(SIMD8(repeating: u))[0]
            let ref = Foundation.log1p(Double(u))
            worstLog = max(worstLog, ref == 0 ? Double(abs(l)) : abs(Double(l) - ref) / ref)
        }
        XCTAssertLessThan(worstExp, 4e-7)
        XCTAssertLessThan(worstLog, 4e-7)
        XCTAssertEqual(FastMath.log1pUnit(SIMD8(repeating: 1e-30))[0], 1e-30, accuracy: 1e-36)
    }

    func testBCEWithLogitsAgainstDoubleReference() {
        var rng = RNG(seed: 3)
        let rows = 5, d = 203    // not a multiple of 8: exercises the tail
        let logits = (0..<(rows * d)).map { _ in rng.normal() * (rng.bernoulli(0.1) ? 40 : 4) }
        let targets = (0..<(rows * d)).map { _ in rng.bernoulli(0.3) ? rng.uniform() : 0 }
        var loss = [Double](repeating: 0, count: rows)
        var grad = [Float](repeating: 0, count: rows * d)
        logits.withUnsafeBufferPointer { lb in
            targets.withUnsafeBufferPointer { tb in
                FrameLoss.bceWithLogits(rows: rows, dimension: d, logits: lb.baseAddress!, targets: { tb.baseAddress! + $0 * d },
                                        rowLoss: &loss, dLogits: &grad, scale: 0.5)
            }
        }
        for r in 0..<rows {
            var expected = 0.0
            for j in 0..<d {
                let x = Double(logits[r * d + j]), t = Double(targets[r * d + j])
                expected += max(x, 0) - x * t + Foundation.log1p(Foundation.exp(-abs(x)))
                let sigmoid = 1 / (1 + Foundation.exp(-x))
                XCTAssertEqual(Double(grad[r * d + j]), 0.5 * (sigmoid - t), accuracy: 1e-6)
            }
            XCTAssertEqual(loss[r], expected, accuracy: 1e-5 * expected)
        }
    }
}
