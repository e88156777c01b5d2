import NN
import TensorCore
import TestSupport
import XCTest

final class PoolLayerTests: XCTestCase {
    typealias S = LayerTestSupport

    func testMaxPoolMatchesPyTorch() throws {
        let f = try S.fixture("pool.safetensors")
        let layers: [String: MaxPool2d] = [
            "max_k3s2p1": MaxPool2d(kernelSize: 3, stride: 2, padding: 1),
            "max_k3s2p1_even": MaxPool2d(kernelSize: 3, stride: 2, padding: 1),
            "max_k2s2": MaxPool2d(kernelSize: 2),
            "max_negative": MaxPool2d(kernelSize: 3, stride: 2, padding: 1),
        ]
        XCTAssertEqual(Set(S.cases(f, having: "x", prefix: "max_")), Set(layers.keys))
        for (name, pool) in layers {
            let x = try f.tensor("\(name).x")
            let (y, cache) = pool.forward(x)
            XCTAssertEqual(y, try f.tensor("\(name).y"), name)  // a selection: exact
            // Overlapping windows sum several gradients into one input: float32 rounding, so not exact.
            S.assertGradient(pool.backward(try f.tensor("\(name).dy"), cache: cache), try f.tensor("\(name).dx"), name)
        }
    }

    func testAvgPoolMatchesPyTorch() throws {
        let f = try S.fixture("pool.safetensors")
        let layers: [String: AvgPool2d] = [
            "avg_k3s2p1": AvgPool2d(kernelSize: 3, stride: 2, padding: 1),
            "avg_k3s2p1_excl": AvgPool2d(kernelSize: 3, stride: 2, padding: 1, countIncludePad: false),
            "avg_k2s2": AvgPool2d(kernelSize: 2),
        ]
        XCTAssertEqual(Set(S.cases(f, having: "x", prefix: "avg_")), Set(layers.keys))
        for (name, pool) in layers {
            let x = try f.tensor("\(name).x")
            S.assertForward(pool.forward(x), try f.tensor("\(name).y"), name)
            S.assertGradient(pool.backward(try f.tensor("\(name).dy"), inputShape: x.shape), try f.tensor("\(name).dx"), name)
        }
    }

    func testAdaptiveAvgPoolMatchesPyTorch() throws {
        let f = try S.fixture("pool.safetensors")
        let layers: [String: AdaptiveAvgPool2d] = [
            "adaptive_7to3": AdaptiveAvgPool2d(3),
            "adaptive_8to14": AdaptiveAvgPool2d(14),
            "adaptive_7x9to3x4": AdaptiveAvgPool2d(outputHeight: 3, outputWidth: 4),
            "adaptive_5to1": AdaptiveAvgPool2d(1),
            "adaptive_6to6": AdaptiveAvgPool2d(6),
        ]
        XCTAssertEqual(Set(S.cases(f, having: "x", prefix: "adaptive_")), Set(layers.keys))
        for (name, pool) in layers {
            let x = try f.tensor("\(name).x")
            S.assertForward(pool.forward(x), try f.tensor("\(name).y"), name)
            S.assertGradient(pool.backward(try f.tensor("\(name).dy"), inputShape: x.shape), try f.tensor("\(name).dx"), name)
        }
        // Identity size is an exact copy.
        let x = try f.tensor("adaptive_6to6.x")
        XCTAssertEqual(AdaptiveAvgPool2d(6).forward(x), x)
    }

    func testFiniteDifferences() {
        var rng = RNG(seed: 31)
        // Distinct values at least 0.1 apart, so a ±eps probe never changes which element wins a max window.
        var values = [Float](repeating: 0, count: 2 * 2 * 7 * 7)
        for i in 0..<values.count { values[i] = Float(i) * 0.1 - 9 }
        values.shuffle(using: &rng)
        let x = Tensor(shape: [2, 2, 7, 7], storage: values)
        func check(_ label: String, forward: (Tensor) -> Tensor, backward: (Tensor) -> Tensor) {
            let r = Tensor.randn(forward(x).shape, rng: &rng)
            S.assertMatchesNumerical(backward(r), S.numericalGradient(x.storage) {
                S.dot(forward(Tensor(shape: x.shape, storage: $0)), r)
            }, label)
        }
        let maxPool = MaxPool2d(kernelSize: 3, stride: 2, padding: 1)
        check("max", forward: { maxPool.forward($0).y }, backward: { maxPool.backward($0, cache: maxPool.forward(x).cache) })
        for pool in [AvgPool2d(kernelSize: 3, stride: 2, padding: 1),
                     AvgPool2d(kernelSize: 3, stride: 2, padding: 1, countIncludePad: false)] {
            check("avg include=\(pool.countIncludePad)", forward: { pool.forward($0) },
                  backward: { pool.backward($0, inputShape: x.shape) })
        }
        for pool in [AdaptiveAvgPool2d(3), AdaptiveAvgPool2d(outputHeight: 10, outputWidth: 4)] {
            check("adaptive \(pool.outputHeight)×\(pool.outputWidth)", forward: { pool.forward($0) },
                  backward: { pool.backward($0, inputShape: x.shape) })
        }
    }

    func testParallelPathsMatchSerial() {
        var rng = RNG(seed: 6)
        let x = Tensor.randn([2, 32, 16, 16], rng: &rng)
        let maxPool = MaxPool2d(kernelSize: 3, stride: 2, padding: 1)
        let avgPool = AvgPool2d(kernelSize: 3, stride: 2, padding: 1)
        let adaptive = AdaptiveAvgPool2d(14)
        let dyPool = Tensor.randn([2, 32, 8, 8], rng: &rng), dyAdaptive = Tensor.randn([2, 32, 14, 14], rng: &rng)
        func run() -> [Tensor] {
            let (m, cache) = maxPool.forward(x)
            return [m, maxPool.backward(dyPool, cache: cache), avgPool.forward(x),
                    avgPool.backward(dyPool, inputShape: x.shape), adaptive.forward(x),
                    adaptive.backward(dyAdaptive, inputShape: x.shape)]
        }
        let serial = S.withThreads(1) { run() }
        let parallel = S.withThreads(2) { run() }
        for (a, b) in zip(serial, parallel) { XCTAssertEqual(a, b) }
    }
}
