import NN
import TensorCore
import TestSupport
@testable import Vision
import XCTest

/// One torchvision Bottleneck (stride 2, downsample shortcut) in training mode: gradients against PyTorch
/// (float64 reference) and against central finite differences.
final class BlockGradientTests: XCTestCase {
    struct Block {
        let block: ResidualBlock
        let params: Parameters
    }

    /// The fixture's block: 8 → planes 4 → 16 channels, stride 2, names `conv1.weight`, `downsample.0.weight`.
    func makeBlock() throws -> Block {
        var layout = ParameterLayout()
        var folded = FoldedLayout()
        let block = ResidualBlock(bottleneck: true, name: "", inChannels: 8, planes: 4, stride: 2,
                                  layout: &layout, folded: &folded)
        let params = Parameters(layout)
        let file = try EncoderParityTests.weights("bottleneck_train")
        for p in layout.params where !p.name.hasSuffix("num_batches_tracked") {
            params.set(p, try file.tensor(p.name))
        }
        return Block(block: block, params: params)
    }

    func testBottleneckTrainingGradientsMatchPyTorch() throws {
        let io = try EncoderParityTests.io("bottleneck_train")
        let b = try makeBlock()
        let ws = ConvWorkspace()
        let (y, cache) = b.block.forward(try io.tensor("input"), b.params, batchNorm: .batchStatistics, workspace: ws)
        EncoderParityTests.assertRelativeClose(y, try io.tensor("output"), "block output")
        let dx = b.block.backward(try io.tensor("dy"), cache: cache, b.params, workspace: ws)
        EncoderParityTests.assertRelativeClose(dx, try io.tensor("dx"), "dx")
        for p in b.params.layout.params {
            if p.trainable {
                EncoderParityTests.assertRelativeClose(b.params.gradTensor(p), try io.tensor("grad.\(p.name)"), "grad \(p.name)")
            } else if p.name.contains("running") {
                assertClose(b.params.tensor(p), try io.tensor("after.\(p.name)"), rtol: 1e-5, atol: 1e-6, p.name)
            }
        }
    }

    /// L = Σ y·dy with batch-statistics BatchNorm. For every parameter tensor θ (and the input) and a
    /// direction v, the central difference (L(θ+εv) − L(θ−εv)) / 2ε must equal the backward pass's ∇θ·v.
    /// (Directional rather than per-element differences: in float32 a single element's effect on L is too
    /// close to round-off.)
    func testBottleneckGradientsMatchFiniteDifferences() throws {
        let io = try EncoderParityTests.io("bottleneck_train")
        let b = try makeBlock()
        let ws = ConvWorkspace()
        let x = try io.tensor("input"), dy = try io.tensor("dy")
        func loss(_ input: Tensor) -> Double {
            let (y, _) = b.block.forward(input, b.params, batchNorm: .batchStatistics, workspace: ws)
            var s = 0.0
            for i in 0..<y.count { s += Double(y.storage[i]) * Double(dy.storage[i]) }
            return s
        }
        b.params.zeroGrads()
        let (_, cache) = b.block.forward(x, b.params, batchNorm: .batchStatistics, workspace: ws)
        let dx = b.block.backward(dy, cache: cache, b.params, workspace: ws)
        // Central differences of this block (training-mode BatchNorm over 2×5×5 positions, three ReLUs) are
        // only accurate to a few percent in float32: too small an ε drowns in round-off, too large an ε moves
        // ReLU inputs across zero (PyTorch's own float32 differences behave the same). So each direction is
        // tried at three step sizes and must agree within 3% at one of them: enough to catch a wrong sign, a
        // missing term or a wrong factor.
        var rng = RNG(seed: 3)
        func check(_ name: String, _ analytic: Double, _ lossAt: (Float) -> (Double, Double)) {
            var errors: [Double] = []
            for eps: Float in [1e-2, 3e-3, 1e-3] {
                let (up, down) = lossAt(eps)
                let numeric = (up - down) / Double(2 * eps)
                errors.append(abs(analytic - numeric) / max(1, abs(analytic)))
            }
            XCTAssertLessThan(errors.min()!, 0.03, "\(name): analytic \(analytic), relative errors \(errors)")
        }
        var checked = 0
        for p in b.params.layout.params where p.trainable {
            // Along the gradient itself (scaled to unit RMS): the largest change of L per step, so round-off
            // matters least; plus a little noise so that every component is exercised.
            let grad = b.params.grad(p)
            let rms = (Kernels.sumOfSquares(p.count, grad) / Double(p.count)).squareRoot()
            let v = (0..<p.count).map { Float(Double(grad[$0]) / max(rms, 1e-12)) + 0.1 * rng.normal() }
            let value = b.params.value(p)
            let saved = Array(UnsafeBufferPointer(start: value, count: p.count))
            let analytic = (0..<p.count).reduce(0.0) { $0 + Double(grad[$1]) * Double(v[$1]) }
            check(p.name, analytic) { eps in
                for i in 0..<p.count { value[i] = saved[i] + eps * v[i] }
                let up = loss(x)
                for i in 0..<p.count { value[i] = saved[i] - eps * v[i] }
                let down = loss(x)
                value.update(from: saved, count: p.count)
                return (up, down)
            }
            checked += 1
        }
        XCTAssertEqual(checked, 12)  // 4 convolution weights, 4 BatchNorms × (γ, β)
        let dxRMS = (Kernels.sumOfSquares(dx.count, dx.storage) / Double(dx.count)).squareRoot()
        let v = Tensor(shape: x.shape, storage: dx.storage.map { Float(Double($0) / dxRMS) + 0.1 * rng.normal() })
        let analytic = (0..<x.count).reduce(0.0) { $0 + Double(dx.storage[$1]) * Double(v.storage[$1]) }
        check("input", analytic) { eps in
            var xp = x, xm = x
            for i in 0..<x.count { xp.storage[i] += eps * v.storage[i]; xm.storage[i] -= eps * v.storage[i] }
            return (loss(xp), loss(xm))
        }
    }

    /// The ResNet stem and a basic block through the whole-encoder training path: frozen layers get no
    /// gradient, trainable ones do.
    func testFineTuningFromLayer2LeavesEarlierLayersWithoutGradients() throws {
        let encoder = Encoder(.resnet(depth: 18, width: 4))
        var rng = RNG(seed: 1)
        encoder.initialize(rng: &rng)
        XCTAssertTrue(encoder.setTrainable(from: "layer2"))
        XCTAssertFalse(encoder.setTrainable(from: "layer9"))
        let x = Tensor.randn([2, 3, 32, 32], rng: &rng)
        let (f, cache) = encoder.forwardTraining(images: x)
        XCTAssertEqual(f.shape, [2, 1, 32])
        encoder.backward(Tensor.randn(f.shape, rng: &rng), cache: cache)
        let p = encoder.parameters
        func gradNorm(_ name: String) -> Double {
            let param = p.layout.param(named: name)!
            return Kernels.sumOfSquares(param.count, p.grad(param))
        }
        XCTAssertEqual(gradNorm("conv1.weight"), 0)
        XCTAssertEqual(gradNorm("layer1.1.conv2.weight"), 0)
        XCTAssertGreaterThan(gradNorm("layer2.0.conv1.weight"), 0)
        XCTAssertGreaterThan(gradNorm("layer2.0.downsample.0.weight"), 0)
        XCTAssertGreaterThan(gradNorm("layer4.1.bn2.weight"), 0)
        // Frozen layers ran in inference mode: their running statistics did not move.
        let rm = p.layout.param(named: "bn1.running_mean")!
        XCTAssertEqual(p.tensor(rm).storage, [Float](repeating: 0, count: 4))
    }
}
