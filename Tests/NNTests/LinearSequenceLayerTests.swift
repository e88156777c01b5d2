import NN
import TensorCore
import TestSupport
import XCTest

/// The sequence-side layers' raw APIs against naive references (PyTorch parity of `Linear` is in
/// ConvLayerTests, of Embedding / cross-entropy / dropout-off paths in the decoder and recurrent fixtures).
final class LinearSequenceLayerTests: XCTestCase {
    /// Naive y = x·Wᵀ + b.
    private func reference(_ x: [Float], _ w: [Float], _ b: [Float]?, rows: Int, inF: Int, outF: Int) -> [Float] {
        var y = [Float](repeating: 0, count: rows * outF)
        for r in 0..<rows { for o in 0..<outF {
            var s = Double(b?[o] ?? 0)
            for i in 0..<inF { s += Double(x[r * inF + i]) * Double(w[o * inF + i]) }
            y[r * outF + o] = Float(s)
        } }
        return y
    }

    /// Every row count across the streaming (≤ 6 rows, groups of 3) / SGEMM boundary, with odd widths for the
    /// SIMD tails, strided input and output rows and `accumulate`.
    func testRawForwardAllRowCountsStridesAndAccumulate() {
        var rng = RNG(seed: 3)
        for (inF, outF) in [(13, 7), (64, 33), (3, 5)] {
            var layout = ParameterLayout()
            let linear = Linear("l", inFeatures: inF, outFeatures: outF, layout: &layout)
            let p = Parameters(layout)
            linear.initializePyTorchDefault(p, rng: &rng)
            let w = p.tensor(linear.weight).storage, b = p.tensor(linear.bias!).storage
            for rows in 1...9 {
                let ldx = inF + 2, ldy = outF + 3
                let x = (0..<(rows * ldx)).map { _ in rng.normal() }
                var y = (0..<(rows * ldy)).map { _ in rng.normal() }
                let y0 = y
                x.withUnsafeBufferPointer { xb in
                    y.withUnsafeMutableBufferPointer { yb in
                        linear.forward(rows: rows, xb.baseAddress!, ldx: ldx, into: yb.baseAddress!, ldy: ldy,
                                       accumulate: true, p)
                    }
                }
                let dense = (0..<rows).flatMap { r in x[(r * ldx)..<(r * ldx + inF)] }
                let expected = reference(dense, w, b, rows: rows, inF: inF, outF: outF)
                for r in 0..<rows { for o in 0..<outF {
                    XCTAssertEqual(y[r * ldy + o], y0[r * ldy + o] + expected[r * outF + o], accuracy: 1e-4,
                                   "rows \(rows) in \(inF) out \(outF) [\(r), \(o)]")
                } }
                // Row padding is untouched.
                for r in 0..<rows { for o in outF..<ldy { XCTAssertEqual(y[r * ldy + o], y0[r * ldy + o]) } }
            }
        }
    }

    func testBackwardMatchesNaiveGradients() {
        var rng = RNG(seed: 4)
        var layout = ParameterLayout()
        let linear = Linear("l", inFeatures: 6, outFeatures: 4, layout: &layout)
        let p = Parameters(layout)
        linear.initializePyTorchDefault(p, rng: &rng)
        let x = Tensor.randn([5, 6], rng: &rng), dy = Tensor.randn([5, 4], rng: &rng)
        let dx = linear.backward(dy, input: x, p)
        let w = p.tensor(linear.weight)
        for r in 0..<5 { for i in 0..<6 {
            XCTAssertEqual(dx[r, i], (0..<4).map { dy[r, $0] * w[$0, i] }.reduce(0, +), accuracy: 1e-5)
        } }
        let dw = p.gradTensor(linear.weight), db = p.gradTensor(linear.bias!)
        for o in 0..<4 {
            XCTAssertEqual(db[o], (0..<5).map { dy[$0, o] }.reduce(0, +), accuracy: 1e-5)
            for i in 0..<6 { XCTAssertEqual(dw[o, i], (0..<5).map { dy[$0, o] * x[$0, i] }.reduce(0, +), accuracy: 1e-5) }
        }
    }

    func testEmbeddingGathersAndScatterAddsRepeatedTokens() {
        var layout = ParameterLayout()
        let emb = Embedding("embedding", count: 5, dimension: 3, layout: &layout)
        XCTAssertEqual(layout.params.map(\.name), ["embedding.weight"])
        let p = Parameters(layout)
        var rng = RNG(seed: 5)
        emb.initializePyTorchDefault(p, rng: &rng)
        let w = p.tensor(emb.weight)
        let tokens = [4, 1, 4]
        let y = emb.forward(tokens, p)
        for (r, t) in tokens.enumerated() { for j in 0..<3 { XCTAssertEqual(y[r, j], w[t, j]) } }
        emb.backward(Tensor(shape: [3, 3], storage: [1, 2, 3, 10, 20, 30, 100, 200, 300]), tokens: tokens, p)
        let g = p.gradTensor(emb.weight)
        XCTAssertEqual(Array(g.storage[12..<15]), [101, 202, 303])
        XCTAssertEqual(Array(g.storage[3..<6]), [10, 20, 30])
        XCTAssertEqual(g.storage[0], 0)
    }

    func testDropoutIsSeededInvertedAndReusesItsMask() {
        let dropout = Dropout(probability: 0.25)
        let x = Tensor(shape: [4000], repeating: 2)
        var r1 = RNG(seed: 9), r2 = RNG(seed: 9)
        let (y, mask) = dropout.forward(x, training: true, rng: &r1)
        XCTAssertEqual(y, dropout.forward(x, training: true, rng: &r2).0)
        let kept = y.storage.filter { $0 != 0 }
        XCTAssertTrue(kept.allSatisfy { abs($0 - 2 / 0.75) < 1e-6 })
        XCTAssertEqual(Double(kept.count) / 4000, 0.75, accuracy: 0.03)
        let dx = dropout.backward(Tensor(shape: [4000], repeating: 1), mask)
        XCTAssertEqual(dx.storage.map { $0 != 0 }, y.storage.map { $0 != 0 })
        var r3 = RNG(seed: 9)
        XCTAssertEqual(dropout.forward(x, training: false, rng: &r3).0, x)
        XCTAssertEqual(r3, RNG(seed: 9), "evaluation draws nothing")
    }

    func testCrossEntropyIsTheMeanOverRowsWithSoftmaxMinusOneHotGradient() {
        var rng = RNG(seed: 6)
        let logits = Tensor.randn([4, 7], std: 3, rng: &rng), targets = [0, 6, 3, 3]
        let (loss, d) = SoftmaxCrossEntropy.forwardBackward(logits: logits, targets: targets)
        var expected = 0.0
        for r in 0..<4 {
            let row = (0..<7).map { Double(logits[r, $0]) }
            let m = row.max()!, lse = m + log(row.map { exp($0 - m) }.reduce(0, +))
            expected += lse - row[targets[r]]
            for j in 0..<7 {
                let g = (exp(row[j] - lse) - (j == targets[r] ? 1 : 0)) / 4
                XCTAssertEqual(Double(d[r, j]), g, accuracy: 1e-6)
            }
        }
        XCTAssertEqual(Double(loss), expected / 4, accuracy: 1e-5)
        XCTAssertEqual(SoftmaxCrossEntropy.loss(logits: logits, targets: targets), loss)
    }
}
