import NN
import TensorCore
import TestSupport
import XCTest

final class BatchNormLayerTests: XCTestCase {
    typealias S = LayerTestSupport

    private func makeBN(_ f: SafeTensorsFile, _ key: String) throws -> (BatchNorm2d, Parameters) {
        let gamma = try f.tensor("\(key).weight")
        var layout = ParameterLayout()
        let bn = BatchNorm2d("bn", channels: gamma.count, layout: &layout)
        let p = Parameters(layout)
        p.set(bn.weight, gamma)
        p.set(bn.bias, try f.tensor("\(key).bias"))
        p.set(bn.runningMean, try f.tensor("\(key).running_mean"))
        p.set(bn.runningVar, try f.tensor("\(key).running_var"))
        p.set(bn.numBatchesTracked, Tensor(shape: [], storage: [3]))
        return (bn, p)
    }

    func testTrainAndEvalMatchPyTorch() throws {
        let f = try S.fixture("batchnorm.safetensors")
        let keys = S.cases(f, having: "running_mean_after")
        XCTAssertEqual(keys.count, 4)
        for key in keys {
            let (bn, p) = try makeBN(f, key)
            let training = key.hasSuffix("_train")
            let x = try f.tensor("\(key).x")
            let (y, cache) = bn.forward(x, p, training: training)
            S.assertForward(y, try f.tensor("\(key).y"), key)
            S.assertForward(p.tensor(bn.runningMean), try f.tensor("\(key).running_mean_after"), key + " running_mean")
            S.assertForward(p.tensor(bn.runningVar), try f.tensor("\(key).running_var_after"), key + " running_var")
            XCTAssertEqual(p.tensor(bn.numBatchesTracked).storage,
                           try f.tensor("\(key).num_batches_tracked_after").storage, key)
            let dx = bn.backward(try f.tensor("\(key).dy"), input: x, cache: cache, p)
            S.assertGradient(dx, try f.tensor("\(key).dx"), key + " dx")
            S.assertGradient(p.gradTensor(bn.weight), try f.tensor("\(key).dweight"), key + " dweight")
            S.assertGradient(p.gradTensor(bn.bias), try f.tensor("\(key).dbias"), key + " dbias")
        }
    }

    func testRunningStatisticsAreNonTrainableBuffersWithPyTorchNames() {
        var layout = ParameterLayout()
        let bn = BatchNorm2d("layer1.0.bn1", channels: 4, layout: &layout)
        XCTAssertEqual(layout.params.map(\.name), ["layer1.0.bn1.weight", "layer1.0.bn1.bias", "layer1.0.bn1.running_mean",
                                                   "layer1.0.bn1.running_var", "layer1.0.bn1.num_batches_tracked"])
        XCTAssertEqual(layout.params.map(\.trainable), [true, true, false, false, false])
        XCTAssertEqual(bn.numBatchesTracked.count, 1)
        let p = Parameters(layout)
        var rng = RNG(seed: 0)
        bn.initialize(p, rng: &rng)
        XCTAssertEqual(p.tensor(bn.weight).storage, [1, 1, 1, 1])
        XCTAssertEqual(p.tensor(bn.runningVar).storage, [1, 1, 1, 1])
        // Training without updating (e.g. a finite-difference probe) leaves the buffers alone.
        _ = bn.forward(Tensor.randn([2, 4, 3, 3], rng: &rng), p, training: true, updateRunningStats: false)
        XCTAssertEqual(p.tensor(bn.runningMean).storage, [0, 0, 0, 0])
        XCTAssertEqual(p.tensor(bn.numBatchesTracked).storage, [0])
    }

    func testFiniteDifferences() {
        var rng = RNG(seed: 21)
        var layout = ParameterLayout()
        let bn = BatchNorm2d("bn", channels: 3, layout: &layout)
        let p = Parameters(layout)
        for i in 0..<3 {
            p.value(bn.weight)[i] = rng.uniform(0.5, 1.5)
            p.value(bn.bias)[i] = rng.normal()
            p.value(bn.runningMean)[i] = rng.normal()
            p.value(bn.runningVar)[i] = rng.uniform(0.5, 1.5)
        }
        let x = Tensor.randn([2, 3, 3, 3], rng: &rng)
        let r = Tensor.randn(x.shape, rng: &rng)
        for training in [true, false] {
            let label = training ? "train" : "eval"
            let loss = { (x: Tensor) in S.dot(bn.forward(x, p, training: training, updateRunningStats: false).y, r) }
            let (_, cache) = bn.forward(x, p, training: training, updateRunningStats: false)
            p.zeroGrads()
            let dx = bn.backward(r, input: x, cache: cache, p)
            S.assertMatchesNumerical(dx, S.numericalGradient(x.storage, eps: 1e-3) {
                loss(Tensor(shape: x.shape, storage: $0))
            }, label + " dx")
            for param in [bn.weight, bn.bias] {
                let v0 = p.tensor(param)
                S.assertMatchesNumerical(p.gradTensor(param), S.numericalGradient(v0.storage) {
                    p.set(param, Tensor(shape: v0.shape, storage: $0))
                    return loss(x)
                }, label + " " + param.name)
                p.set(param, v0)
            }
        }
    }

    func testFoldIntoConvolutionMatchesConvThenBatchNorm() {
        var rng = RNG(seed: 8)
        for convBias in [false, true] {
            var layout = ParameterLayout()
            let conv = Conv2d("conv", inChannels: 3, outChannels: 5, kernelSize: 3, stride: 2, padding: 1, bias: convBias,
                              layout: &layout)
            let bn = BatchNorm2d("bn", channels: 5, layout: &layout)
            let p = Parameters(layout)
            conv.initializePyTorchDefault(p, rng: &rng)
            for i in 0..<5 {
                p.value(bn.weight)[i] = rng.uniform(0.5, 1.5)
                p.value(bn.bias)[i] = rng.normal()
                p.value(bn.runningMean)[i] = 0.3 * rng.normal()
                p.value(bn.runningVar)[i] = rng.uniform(0.2, 2)
            }
            let x = Tensor.randn([2, 3, 9, 9], rng: &rng)
            let expected = bn.forward(conv.forward(x, p), p, training: false).y
            let (w, b) = bn.fold(conv, p)
            let folded = w.withUnsafeBufferPointer { wb in
                b.withUnsafeBufferPointer { bb in conv.forward(x, weight: wb.baseAddress!, bias: bb.baseAddress!) }
            }
            assertClose(folded, expected, rtol: 1e-5, atol: 1e-5, "folded conv, bias=\(convBias)")
            let foldedReLU = w.withUnsafeBufferPointer { wb in
                b.withUnsafeBufferPointer { bb in conv.forward(x, weight: wb.baseAddress!, bias: bb.baseAddress!, relu: true) }
            }
            assertClose(foldedReLU, ReLU().forward(expected), rtol: 1e-5, atol: 1e-5, "folded conv + ReLU")
        }
    }

    func testParallelPathMatchesSerial() {
        var rng = RNG(seed: 4)
        var layout = ParameterLayout()
        let bn = BatchNorm2d("bn", channels: 16, layout: &layout)
        let p = Parameters(layout)
        bn.initialize(p, rng: &rng)
        let x = Tensor.randn([4, 16, 24, 24], rng: &rng)
        let dy = Tensor.randn(x.shape, rng: &rng)
        var results: [(Tensor, Tensor, Tensor)] = []
        for threads in [1, 2] {
            S.withThreads(threads) {
                let (y, cache) = bn.forward(x, p, training: true, updateRunningStats: false)
                p.zeroGrads()
                let dx = bn.backward(dy, input: x, cache: cache, p)
                results.append((y, dx, p.gradTensor(bn.weight)))
            }
        }
        XCTAssertEqual(results[0].0, results[1].0)
        XCTAssertEqual(results[0].1, results[1].1)
        XCTAssertEqual(results[0].2, results[1].2)
    }
}
