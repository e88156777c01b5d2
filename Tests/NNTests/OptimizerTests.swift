import NN
import TensorCore
import TestSupport
import XCTest

/// Adam and gradient clipping against torch.optim.Adam / clip_grad_norm_ / clip_grad_value_
/// (fixtures: scripts/make_optimizer_fixtures.py).
final class OptimizerTests: XCTestCase {
    private func model() -> (Parameters, Param, Param, Param) {
        var layout = ParameterLayout()
        let dec = layout.add("decoder.w", [5, 4])
        let running = layout.addBuffer("decoder.bn.running_mean", [3])  // must be left alone
        let enc = layout.add("encoder.w", [7])
        return (Parameters(layout), dec, enc, running)
    }

    /// Row `t` of a steps×shape tensor.
    private func row(_ t: Tensor, _ i: Int, _ shape: [Int]) -> Tensor {
        let n = shape.reduce(1, *)
        return Tensor(shape: shape, storage: Array(t.storage[(i * n)..<((i + 1) * n)]))
    }

    func testAdamMatchesPyTorchWithGroupsAndWeightDecay() throws {
        let f = try SafeTensorsFile(path: Fixtures.path("optim/adam.safetensors"))
        let (params, dec, enc, running) = model()
        params.set(dec, try f.tensor("decoder.w.initial"))
        params.set(enc, try f.tensor("encoder.w.initial"))
        params.set(running, Tensor(shape: [3], repeating: 7))
        let adam = Adam(count: params.count, learningRate: 1e-3, weightDecay: 0.01,
                        groupLearningRates: ["encoder.": 1e-4])
        let gradsDec = try f.tensor("decoder.w.grads"), gradsEnc = try f.tensor("encoder.w.grads")
        let afterDec = try f.tensor("decoder.w.after"), afterEnc = try f.tensor("encoder.w.after")
        for t in 0..<6 {
            params.zeroGrads()
            row(gradsDec, t, [5, 4]).withUnsafeBufferPointer { params.grad(dec).update(from: $0.baseAddress!, count: 20) }
            row(gradsEnc, t, [7]).withUnsafeBufferPointer { params.grad(enc).update(from: $0.baseAddress!, count: 7) }
            params.grad(running).update(repeating: 1, count: 3)  // a stray gradient on a buffer is ignored
            adam.update(params)
            assertClose(params.tensor(dec), row(afterDec, t, [5, 4]), rtol: 1e-5, atol: 1e-6, "decoder step \(t + 1)")
            assertClose(params.tensor(enc), row(afterEnc, t, [7]), rtol: 1e-5, atol: 1e-6, "encoder step \(t + 1)")
        }
        XCTAssertEqual(params.tensor(running).storage, [7, 7, 7])
        XCTAssertEqual(adam.step, 6)
    }

    func testClippingMatchesPyTorch() throws {
        let f = try SafeTensorsFile(path: Fixtures.path("optim/clip.safetensors"))
        let (params, dec, enc, _) = model()
        func load() throws {
            params.zeroGrads()
            try f.tensor("g1").withUnsafeBufferPointer { params.grad(dec).update(from: $0.baseAddress!, count: 20) }
            try f.tensor("g2").withUnsafeBufferPointer { params.grad(enc).update(from: $0.baseAddress!, count: 7) }
        }
        for (name, maxNorm) in [("norm_clipped", Float(2)), ("norm_unclipped", 1000)] {
            try load()
            let total = GradientClipping.clipByNorm(params, maxNorm: maxNorm)
            XCTAssertEqual(total, try f.tensor("\(name).total_norm").storage[0], accuracy: 1e-5)
            assertClose(params.gradTensor(dec), try f.tensor("\(name).g1"), rtol: 1e-5, atol: 1e-6, name)
            assertClose(params.gradTensor(enc), try f.tensor("\(name).g2"), rtol: 1e-5, atol: 1e-6, name)
        }
        try load()
        GradientClipping.clipByValue(params, maxValue: 1.5)
        assertClose(params.gradTensor(dec), try f.tensor("value.g1"), "value")
        assertClose(params.gradTensor(enc), try f.tensor("value.g2"), "value")
    }
}
