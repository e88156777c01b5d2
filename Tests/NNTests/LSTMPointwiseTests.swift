import CKernels
import Foundation
import NN
import TensorCore
import XCTest

/// The vectorised LSTM pointwise kernel against the same formulas in double precision, in both builds (AVX2+FMA
/// and portable), over the pre-activation range a trained LSTM sees and beyond, including saturation.
final class LSTMPointwiseTests: XCTestCase {
    func testPointwiseForwardMatchesDoublePrecision() {
        // hidden = 21: two full lanes of 8 and a tail of 5, in 3 rows; values from −100 to 100, denser near 0.
        let rows = 3, hs = 21, count = rows * hs
        var rng = RNG(seed: 7)
        for avx2 in [true, false] {
            _ = ck_allow_avx2(avx2 ? 1 : 0)
            defer { _ = ck_allow_avx2(1) }
            for trial in 0..<2000 {
                let spread: Float = [0.01, 0.7, 3, 12, 100][trial % 5]
                let pre = (0..<(4 * count)).map { _ in rng.uniform(-spread, spread) }
                let cPrev = (0..<count).map { _ in rng.uniform(-3, 3) }
                var gates = pre
                var c = [Float](repeating: 0, count: count), t = c, h = c
                gates.withUnsafeMutableBufferPointer { g in
                    LSTMCell.pointwiseForward(rows: rows, hidden: hs, gates: g.baseAddress!, previousCell: cPrev, cell: &c,
                                              tanhCell: &t, hidden: &h)
                }
                for r in 0..<rows {
                    for j in 0..<hs {
                        let at = { (block: Int) in Double(pre[r * 4 * hs + block * hs + j]) }
                        let sigma = { (x: Double) in 1 / (1 + Foundation.exp(-x)) }
                        let i = sigma(at(0)), f = sigma(at(1)), g = Foundation.tanh(at(2)), o = sigma(at(3))
                        let forget = f * Double(cPrev[r * hs + j]), cNew = forget + i * g, tNew = Foundation.tanh(cNew)
                        // c' = f·c + i·g can cancel: float32 rounding of its terms bounds its error, and that of
                        // tanh(c') and h' (slope ≤ 1).
                        let terms = abs(forget) + abs(i * g)
                        let label = "avx2=\(avx2) spread=\(spread) row \(r) unit \(j)"
                        for (got, want, scale) in [(gates[r * 4 * hs + j], i, i), (gates[r * 4 * hs + hs + j], f, f),
                                                   (gates[r * 4 * hs + 2 * hs + j], g, g), (gates[r * 4 * hs + 3 * hs + j], o, o),
                                                   (c[r * hs + j], cNew, terms), (t[r * hs + j], tNew, max(abs(tNew), terms)),
                                                   (h[r * hs + j], o * tNew, max(abs(o * tNew), terms))] {
                            // A few float ulps of the value (or of the terms it was summed from).
                            XCTAssertLessThanOrEqual(abs(Double(got) - want), 1e-6 * abs(scale) + 1e-9, label)
                        }
                    }
                }
            }
        }
    }
}
