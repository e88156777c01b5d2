import CKernels
import NN
import TensorCore
import TestSupport
import XCTest

// Parity tests against PyTorch fixtures written by scripts/make_layer_fixtures.py
// (Tests/Fixtures/layers/*.safetensors), plus finite-difference gradient checks and naive reference loops for
// sizes large enough to take the parallel paths.

/// Shared helpers for the CNN layer tests (ConvLayerTests, BatchNormLayerTests, PoolLayerTests).
enum LayerTestSupport {
    static func fixture(_ file: String) throws -> SafeTensorsFile {
        try SafeTensorsFile(path: Fixtures.path("layers/\(file)"))
    }

    /// Case names (the part before the first dot) of every tensor whose field is `field`.
    static func cases(_ f: SafeTensorsFile, having field: String, prefix: String = "") -> [String] {
        f.names.filter { $0.hasSuffix(".\(field)") && $0.hasPrefix(prefix) }
            .map { String($0.dropLast(field.count + 1)) }.sorted()
    }

    /// Forward outputs: within 1e-5 relative, and never more than 1e-4 off.
    static func assertForward(_ actual: Tensor, _ expected: Tensor, _ label: String,
                              file: StaticString = #filePath, line: UInt = #line) {
        assertClose(actual, expected, rtol: 1e-5, atol: 1e-5, label, file: file, line: line)
        if actual.shape == expected.shape {
            XCTAssertLessThanOrEqual(actual.maxAbsDifference(expected), 1e-4, label, file: file, line: line)
        }
    }

    /// Gradients: within 1e-4.
    static func assertGradient(_ actual: Tensor, _ expected: Tensor, _ label: String,
                               file: StaticString = #filePath, line: UInt = #line) {
        assertClose(actual, expected, rtol: 1e-4, atol: 1e-4, label, file: file, line: line)
    }

    /// Σ a·b in Double: the scalar loss `L = Σ y ⊙ r` whose gradient w.r.t. y is `r`.
    static func dot(_ a: Tensor, _ b: Tensor) -> Double {
        precondition(a.count == b.count)
        var s = 0.0
        for i in 0..<a.count { s += Double(a.storage[i]) * Double(b.storage[i]) }
        return s
    }

    /// Central differences of `loss` at `values`, one coordinate at a time.
    static func numericalGradient(_ values: [Float], eps: Float = 1e-2, loss: ([Float]) -> Double) -> [Float] {
        var v = values
        var g = [Float](repeating: 0, count: v.count)
        for i in 0..<v.count {
            let old = v[i]
            v[i] = old + eps
            let up = loss(v)
            v[i] = old - eps
            let down = loss(v)
            v[i] = old
            g[i] = Float((up - down) / Double(2 * eps))
        }
        return g
    }

    /// Compares an analytic gradient with central differences (float32 forward, so loose tolerances).
    static func assertMatchesNumerical(_ analytic: Tensor, _ numerical: [Float], _ label: String,
                                       rtol: Float = 1e-2, atol: Float = 2e-3,
                                       file: StaticString = #filePath, line: UInt = #line) {
        assertClose(analytic, Tensor(shape: analytic.shape, storage: numerical), rtol: rtol, atol: atol, label,
                    file: file, line: line)
    }

    /// Runs `body` with `Threads.count` temporarily set to `n`.
    static func withThreads<R>(_ n: Int, _ body: () throws -> R) rethrows -> R {
        let saved = Threads.count
        Threads.count = n
        defer { Threads.count = saved }
        return try body()
    }
}

final class ConvLayerTests: XCTestCase {
    typealias S = LayerTestSupport

    /// A Conv2d for fixture case `name` (geometry read back from the weight shape and the case name),
    /// with its parameters loaded.
    private func makeConv(_ f: SafeTensorsFile, _ name: String) throws -> (Conv2d, Parameters) {
        let w = try f.tensor("\(name).weight")
        let hasBias = f.names.contains("\(name).bias")
        // Names look like k3s2p1[_suffix]: kernel, stride, padding.
        let spec = name.split(separator: "_")[0]
        let numbers = spec.split(whereSeparator: { $0.isLetter }).compactMap { Int($0) }
        let (k, s, pad) = (numbers[0], numbers[1], numbers.count > 2 ? numbers[2] : 0)
        XCTAssertEqual(w.shape[2], k, name)
        var layout = ParameterLayout()
        let conv = Conv2d(name, inChannels: w.shape[1], outChannels: w.shape[0], kernelSize: k, stride: s,
                          padding: pad, bias: hasBias, layout: &layout)
        let p = Parameters(layout)
        p.set(conv.weight, w)
        if let b = conv.bias { p.set(b, try f.tensor("\(name).bias")) }
        return (conv, p)
    }

    func testForwardAndBackwardMatchPyTorch() throws {
        let f = try S.fixture("conv.safetensors")
        let names = S.cases(f, having: "weight")
        XCTAssertGreaterThanOrEqual(names.count, 12)
        for name in names {
            var (conv, p) = try makeConv(f, name)
            let x = try f.tensor("\(name).x"), dy = try f.tensor("\(name).dy")
            // The cases made for the direct kernels get them automatically; the rest cannot have them.
            XCTAssertEqual(conv.usesDirectKernels(inputShape: x.shape), name.hasPrefix("k3s1p1_w"), name)
            // Every strategy must agree: automatic (the direct kernels for few output channels at widths that
            // are multiples of 8, else Winograd for 3×3 stride 1), the direct kernels forced on, and by im2col:
            // one image per GEMM, the whole batch in one GEMM, and cache blocks of one or two output rows (the
            // last block partial when the height is odd), and images split over the workers (`imageParallel`).
            let strategies: [(images: Int?, rows: Int?, winograd: Bool?, imageParallel: Bool, direct: Bool?)] =
                [(nil, nil, nil, false, nil), (nil, nil, nil, false, true), (nil, nil, false, false, false),
                 (1, 0, false, false, false), (x.shape[0], 0, false, false, false), (1, 1, false, false, false),
                 (1, 2, false, false, false), (nil, nil, false, true, false), (1, nil, false, true, false),
                 (2, nil, false, true, false)]
            for (images, rows, winograd, imageParallel, direct) in strategies {
                conv.imagesPerGEMMOverride = images
                conv.rowsPerBlockOverride = rows
                conv.winogradOverride = winograd
                conv.imageParallel = imageParallel
                conv.directOverride = direct
                let label = "\(name) imagesPerGEMM=\(images.map(String.init) ?? "auto") rowsPerBlock=\(rows.map(String.init) ?? "auto") winograd=\(winograd.map(String.init) ?? "auto") imageParallel=\(imageParallel) direct=\(direct.map(String.init) ?? "auto")"
                S.assertForward(conv.forward(x, p), try f.tensor("\(name).y"), label)
                S.assertForward(conv.forward(x, p, relu: true), try f.tensor("\(name).y_relu"), label + " relu")
                p.zeroGrads()
                let dx = conv.backward(dy, input: x, p)
                S.assertGradient(dx, try f.tensor("\(name).dx"), label + " dx")
                S.assertGradient(p.gradTensor(conv.weight), try f.tensor("\(name).dweight"), label + " dweight")
                if let b = conv.bias { S.assertGradient(p.gradTensor(b), try f.tensor("\(name).dbias"), label + " dbias") }
            }
        }
    }

    /// A convolution followed by PixelShuffle(2), fused into the image-parallel GEMM's epilogue and dY gather,
    /// gives PyTorch's conv outputs and gradients shuffled; with ReLU, the same as the unfused layers.
    func testPixelShuffledConvolutionMatchesPyTorch() throws {
        let f = try S.fixture("conv.safetensors")
        var checked = 0
        for name in S.cases(f, having: "weight") {
            var (conv, p) = try makeConv(f, name)
            guard conv.outChannels % 4 == 0 else { continue }
            let x = try f.tensor("\(name).x"), dy = try f.tensor("\(name).dy")
            var reluResults: [(y: Tensor, dx: Tensor, dw: Tensor)] = []
            for imageParallel in [true, false] {
                conv.imageParallel = imageParallel
                conv.winogradOverride = false
                conv.directOverride = false
                let label = "\(name) imageParallel=\(imageParallel)"
                S.assertForward(conv.forwardPixelShuffled(x, p), PixelShuffle.forward(try f.tensor("\(name).y")), label)
                p.zeroGrads()
                let dx = conv.backwardPixelShuffled(PixelShuffle.forward(dy), input: x, reluOutput: nil, p)
                S.assertGradient(dx, try f.tensor("\(name).dx"), label + " dx")
                S.assertGradient(p.gradTensor(conv.weight), try f.tensor("\(name).dweight"), label + " dweight")
                // Fused ReLU and its backward, against the unfused path.
                let y = conv.forwardPixelShuffled(x, p, relu: true)
                S.assertForward(y, PixelShuffle.forward(try f.tensor("\(name).y_relu")), label + " relu")
                p.zeroGrads()
                let dxRelu = conv.backwardPixelShuffled(PixelShuffle.forward(dy), input: x, reluOutput: y, p)
                reluResults.append((y, dxRelu, p.gradTensor(conv.weight)))
            }
            S.assertGradient(reluResults[0].dx, reluResults[1].dx, name + " relu dx")
            S.assertGradient(reluResults[0].dw, reluResults[1].dw, name + " relu dweight")
            checked += 1
        }
        XCTAssertGreaterThanOrEqual(checked, 4)
    }

    /// The direct kernels' portable build (what CPUs without AVX2+FMA, and arm64, run) gives PyTorch's results too.
    func testDirectKernelsPortableBuildMatchesPyTorch() throws {
        let f = try S.fixture("conv.safetensors")
        _ = ck_allow_avx2(0)
        defer { _ = ck_allow_avx2(1) }
        let names = S.cases(f, having: "weight").filter { $0.hasPrefix("k3s1p1_w") }
        XCTAssertEqual(names.count, 2)
        for name in names {
            let (conv, p) = try makeConv(f, name)
            let x = try f.tensor("\(name).x"), dy = try f.tensor("\(name).dy")
            S.assertForward(conv.forward(x, p, relu: true), try f.tensor("\(name).y_relu"), name + " portable relu")
            p.zeroGrads()
            S.assertGradient(conv.backward(dy, input: x, p), try f.tensor("\(name).dx"), name + " portable dx")
            S.assertGradient(p.gradTensor(conv.weight), try f.tensor("\(name).dweight"), name + " portable dweight")
            if let b = conv.bias { S.assertGradient(p.gradTensor(b), try f.tensor("\(name).dbias"), name + " portable dbias") }
        }
    }

    /// U = G·g·Gᵀ for every output channel of `conv`'s weight in `p`.
    private func winogradWeights(_ conv: Conv2d, _ p: Parameters) -> [Float] {
        var u = [Float](repeating: .nan, count: conv.winogradWeightCount)
        let w = p.value(conv.weight), perOut = conv.inChannels * 9
        u.withUnsafeMutableBufferPointer { ub in
            for oc in 0..<conv.outChannels { conv.winogradWeights(outChannel: oc, weights: w + oc * perOut, into: ub.baseAddress!) }
        }
        return u
    }

    /// Winograd F(2×2, 3×3) on the fixtures' 3×3 / stride 1 / padding 1 cases gives PyTorch's outputs.
    func testWinogradMatchesPyTorch() throws {
        let f = try S.fixture("conv.safetensors")
        var checked = 0
        for name in S.cases(f, having: "weight") {
            let (conv, p) = try makeConv(f, name)
            guard conv.supportsWinograd else { continue }
            let x = try f.tensor("\(name).x"), u = winogradWeights(conv, p)
            let bias = conv.bias.map { UnsafePointer(p.value($0)) }
            S.assertForward(conv.forwardWinograd(x, transformedWeight: u, bias: bias), try f.tensor("\(name).y"), name)
            S.assertForward(conv.forwardWinograd(x, transformedWeight: u, bias: bias, relu: true),
                            try f.tensor("\(name).y_relu"), name + " relu")
            checked += 1
        }
        XCTAssertGreaterThan(checked, 0)
    }

    /// Winograd against im2col on odd and even planes (a half tile at the right and bottom edges), a batch,
    /// one channel, and planes big enough for the parallel paths, on one and two threads.
    func testWinogradMatchesIm2colOnLargerShapes() {
        var rng = RNG(seed: 9)
        for (n, c, oc, h, w) in [(1, 1, 1, 1, 1), (2, 3, 5, 7, 9), (3, 16, 8, 20, 20), (1, 64, 32, 33, 17), (2, 8, 130, 2, 3)] {
            var layout = ParameterLayout()
            let conv = Conv2d("c", inChannels: c, outChannels: oc, kernelSize: 3, stride: 1, padding: 1, layout: &layout)
            let p = Parameters(layout)
            conv.initializePyTorchDefault(p, rng: &rng)
            let x = Tensor.randn([n, c, h, w], rng: &rng), u = winogradWeights(conv, p)
            let bias = UnsafePointer(p.value(conv.bias!))
            for threads in [1, 2] {
                S.withThreads(threads) {
                    let label = "N\(n) C\(c)→\(oc) \(h)×\(w) threads=\(threads)"
                    S.assertForward(conv.forwardWinograd(x, transformedWeight: u, bias: bias, relu: true),
                                    conv.forward(x, p, relu: true), label)
                }
            }
        }
    }

    func testParameterGradientsAccumulateAndInputGradientCanBeSkipped() throws {
        let f = try S.fixture("conv.safetensors")
        let (conv, p) = try makeConv(f, "k3s1p1")
        let x = try f.tensor("k3s1p1.x"), dy = try f.tensor("k3s1p1.dy")
        p.zeroGrads()
        conv.accumulateParameterGradients(dy, input: x, p)
        _ = conv.backward(dy, input: x, p)
        var twice = try f.tensor("k3s1p1.dweight")
        for i in 0..<twice.count { twice.storage[i] *= 2 }
        S.assertGradient(p.gradTensor(conv.weight), twice, "dW accumulates over two calls")
    }

    func testFiniteDifferences() {
        var rng = RNG(seed: 11)
        for (k, s, pad, bias) in [(3, 2, 1, true), (1, 2, 0, false), (2, 1, 0, true)] {
            var layout = ParameterLayout()
            let conv = Conv2d("c", inChannels: 2, outChannels: 3, kernelSize: k, stride: s, padding: pad, bias: bias,
                              layout: &layout)
            let p = Parameters(layout)
            conv.initializePyTorchDefault(p, rng: &rng)
            let x = Tensor.randn([2, 2, 5, 5], rng: &rng)
            let y = conv.forward(x, p)
            let r = Tensor.randn(y.shape, rng: &rng)
            p.zeroGrads()
            let dx = conv.backward(r, input: x, p)
            let label = "k\(k)s\(s)p\(pad)"
            S.assertMatchesNumerical(dx, S.numericalGradient(x.storage) {
                S.dot(conv.forward(Tensor(shape: x.shape, storage: $0), p), r)
            }, label + " dx")
            let w0 = p.tensor(conv.weight)
            S.assertMatchesNumerical(p.gradTensor(conv.weight), S.numericalGradient(w0.storage) {
                p.set(conv.weight, Tensor(shape: w0.shape, storage: $0))
                return S.dot(conv.forward(x, p), r)
            }, label + " dW")
            p.set(conv.weight, w0)
            if let b = conv.bias {
                let b0 = p.tensor(b)
                S.assertMatchesNumerical(p.gradTensor(b), S.numericalGradient(b0.storage) {
                    p.set(b, Tensor(shape: b0.shape, storage: $0))
                    return S.dot(conv.forward(x, p), r)
                }, label + " db")
            }
        }
    }

    /// Direct-loop convolution and its gradients in Double: the obvious definition, for sizes where the
    /// optimised code takes its parallel and grouped paths.
    private func reference(_ conv: Conv2d, _ p: Parameters, x: Tensor, dy: Tensor)
        -> (y: Tensor, dx: Tensor, dw: Tensor, db: Tensor) {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (oc, k, s, pad) = (conv.outChannels, conv.kernelSize, conv.stride, conv.padding)
        let (oh, ow) = conv.outputSize(height: h, width: w)
        let wt = p.tensor(conv.weight).storage.map(Double.init)
        let bias = conv.bias.map { p.tensor($0).storage.map(Double.init) } ?? [Double](repeating: 0, count: oc)
        let xs = x.storage.map(Double.init), dys = dy.storage.map(Double.init)
        var y = [Double](repeating: 0, count: n * oc * oh * ow)
        var dx = [Double](repeating: 0, count: x.count), dw = [Double](repeating: 0, count: wt.count)
        var db = [Double](repeating: 0, count: oc)
        for i in 0..<n { for o in 0..<oc { for a in 0..<oh { for b in 0..<ow {
            let yi = ((i * oc + o) * oh + a) * ow + b
            var acc = bias[o]
            let g = dys[yi]
            db[o] += g
            for ci in 0..<c { for kh in 0..<k { for kw in 0..<k {
                let ih = a * s - pad + kh, iw = b * s - pad + kw
                guard ih >= 0, ih < h, iw >= 0, iw < w else { continue }
                let xi = ((i * c + ci) * h + ih) * w + iw, wi = ((o * c + ci) * k + kh) * k + kw
                acc += xs[xi] * wt[wi]
                dx[xi] += wt[wi] * g
                dw[wi] += xs[xi] * g
            } } }
            y[yi] = acc
        } } } }
        let f = { (v: [Double], shape: [Int]) in Tensor(shape: shape, storage: v.map(Float.init)) }
        return (f(y, [n, oc, oh, ow]), f(dx, x.shape), f(dw, conv.weight.shape), f(db, [oc]))
    }

    func testLargerShapesAgainstDirectLoops() {
        var rng = RNG(seed: 5)
        // (N, C, OC, H, W, k, s, pad): grouped small planes, one-image-per-GEMM large planes (stem-like),
        // pointwise stride 1 on a large plane (no im2col), pointwise stride 2, and a wide odd-sized stride-2
        // input (vectorised stride-2 gather with a scalar tail).
        let cases = [(3, 8, 16, 20, 20, 3, 1, 1), (2, 4, 8, 64, 64, 7, 2, 3), (2, 8, 8, 32, 32, 1, 1, 0),
                     (3, 16, 8, 15, 15, 1, 2, 0), (2, 4, 6, 19, 37, 3, 2, 1)]
        for (n, c, oc, h, w, k, s, pad) in cases {
            var layout = ParameterLayout()
            var conv = Conv2d("c", inChannels: c, outChannels: oc, kernelSize: k, stride: s, padding: pad, layout: &layout)
            let p = Parameters(layout)
            conv.initializePyTorchDefault(p, rng: &rng)
            let x = Tensor.randn([n, c, h, w], rng: &rng)
            let (oh, ow) = conv.outputSize(height: h, width: w)
            let dy = Tensor.randn([n, oc, oh, ow], rng: &rng)
            let ref = reference(conv, p, x: x, dy: dy)
            for (threads, winograd) in [(1, nil), (2, nil), (2, false)] as [(Int, Bool?)] {
                conv.winogradOverride = winograd
                S.withThreads(threads) {
                    let label = "N\(n) C\(c)→\(oc) \(h)×\(w) k\(k)s\(s)p\(pad) threads=\(threads) winograd=\(winograd.map(String.init) ?? "auto")"
                    assertClose(conv.forward(x, p), ref.y, rtol: 1e-4, atol: 1e-4, label)
                    p.zeroGrads()
                    assertClose(conv.backward(dy, input: x, p), ref.dx, rtol: 1e-4, atol: 1e-4, label + " dx")
                    assertClose(p.gradTensor(conv.weight), ref.dw, rtol: 1e-4, atol: 1e-3, label + " dW")
                    assertClose(p.gradTensor(conv.bias!), ref.db, rtol: 1e-4, atol: 1e-3, label + " db")
                }
            }
        }
    }

    func testWorkspaceIsReusedAcrossCalls() {
        var rng = RNG(seed: 2)
        var layout = ParameterLayout()
        let conv = Conv2d("c", inChannels: 4, outChannels: 4, kernelSize: 3, padding: 1, layout: &layout)
        let p = Parameters(layout)
        conv.initializeKaimingNormal(p, rng: &rng)
        let x = Tensor.randn([2, 4, 9, 9], rng: &rng)
        let ws = ConvWorkspace()
        let first = conv.forward(x, p, workspace: ws)
        let bytes = ws.bytes
        XCTAssertGreaterThan(bytes, 0)
        XCTAssertEqual(conv.forward(x, p, workspace: ws), first)
        XCTAssertEqual(ws.bytes, bytes, "steady state must not grow the workspace")
        XCTAssertEqual(conv.forward(x, p), first, "the per-thread default workspace gives the same result")
    }

    func testKaimingNormalFanOutStatistics() {
        var rng = RNG(seed: 3)
        var layout = ParameterLayout()
        let conv = Conv2d("c", inChannels: 64, outChannels: 128, kernelSize: 3, bias: true, layout: &layout)
        let p = Parameters(layout)
        conv.initializeKaimingNormal(p, rng: &rng)
        let w = p.tensor(conv.weight).storage
        let mean = w.reduce(0, +) / Float(w.count)
        let std = (w.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(w.count)).squareRoot()
        XCTAssertEqual(std, (2.0 / Float(128 * 9)).squareRoot(), accuracy: 0.002)
        XCTAssertEqual(mean, 0, accuracy: 0.002)
        XCTAssertEqual(p.tensor(conv.bias!).storage, [Float](repeating: 0, count: 128))
    }
}

/// ReLU, Flatten and Linear (Sources/NN/Layers/Linear.swift) against the same PyTorch fixtures.
final class ConvLayerActivationAndLinearTests: XCTestCase {
    typealias S = LayerTestSupport

    func testReLU() throws {
        let f = try S.fixture("activations.safetensors")
        let x = try f.tensor("relu.x"), y = try f.tensor("relu.y")
        let relu = ReLU()
        let out = relu.forward(x)
        XCTAssertEqual(out, y)
        var inPlace = x
        relu.forward(inPlace: &inPlace)
        XCTAssertEqual(inPlace, y)
        let dy = try f.tensor("relu.dy"), dx = try f.tensor("relu.dx")
        XCTAssertEqual(relu.backward(dy, output: out), dx)
        var masked = dy
        relu.backward(inPlace: &masked, output: out)
        XCTAssertEqual(masked, dx)
    }

    func testFlatten() throws {
        let f = try S.fixture("activations.safetensors")
        let x = try f.tensor("flatten.x")
        let flatten = Flatten()
        XCTAssertEqual(flatten.forward(x), try f.tensor("flatten.y"))
        XCTAssertEqual(flatten.backward(try f.tensor("flatten.dy"), inputShape: x.shape), try f.tensor("flatten.dx"))
    }

    func testLinearMatchesPyTorch() throws {
        let f = try S.fixture("linear.safetensors")
        let names = S.cases(f, having: "weight")
        XCTAssertEqual(names.count, 3)
        for name in names {
            let w = try f.tensor("\(name).weight")
            var layout = ParameterLayout()
            let hasBias = f.names.contains("\(name).bias")
            let linear = Linear(name, inFeatures: w.shape[1], outFeatures: w.shape[0], bias: hasBias, layout: &layout)
            let p = Parameters(layout)
            p.set(linear.weight, w)
            if let b = linear.bias { p.set(b, try f.tensor("\(name).bias")) }
            let x = try f.tensor("\(name).x")
            S.assertForward(linear.forward(x, p), try f.tensor("\(name).y"), name)
            let dx = linear.backward(try f.tensor("\(name).dy"), input: x, p)
            S.assertGradient(dx, try f.tensor("\(name).dx"), name + " dx")
            S.assertGradient(p.gradTensor(linear.weight), try f.tensor("\(name).dweight"), name + " dweight")
            if let b = linear.bias { S.assertGradient(p.gradTensor(b), try f.tensor("\(name).dbias"), name + " dbias") }
        }
    }
}
