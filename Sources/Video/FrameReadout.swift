import NN
import TensorCore

/// A decoder's map from its top hidden state to one frame's logits (pixels) or predictions (features):
/// H' → D per row. `linear` is PyTorch's `nn.Linear(H', D)`; `conv` draws the frame through two upsampling
/// convolutions (`ConvFrameReadout`). Parameters live under `<name>.` as in a PyTorch module tree.
enum FrameReadout {
    case linear(Linear)
    case conv(ConvFrameReadout)

    /// The readout `config.readout` names, reading `hiddenSize` floats and writing one of `config`'s frames.
    init(_ name: String, hiddenSize: Int, config: VideoModelConfig, layout: inout ParameterLayout) {
        switch config.readout {
        case .linear:
            self = .linear(Linear(name, inFeatures: hiddenSize, outFeatures: config.frameDimension, layout: &layout))
        case .conv:
            self = .conv(ConvFrameReadout(name, hiddenSize: hiddenSize, frameSize: config.frameSize,
                                          channels: config.channels, layout: &layout))
        }
    }

    var outFeatures: Int {
        switch self {
        case .linear(let l): return l.outFeatures
        case .conv(let c): return c.frameDimension
        }
    }

    func initializePyTorchDefault(_ p: Parameters, rng: inout RNG) {
        switch self {
        case .linear(let l): l.initializePyTorchDefault(p, rng: &rng)
        case .conv(let c): c.initializePyTorchDefault(p, rng: &rng)
        }
    }

    /// `y[rows × D] = readout(x[rows × H'])`. Returns the activations `backward` can reuse for these rows
    /// (nil for the linear readout, which needs only its input).
    @discardableResult
    func forward(rows: Int, _ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, _ p: Parameters)
        -> ConvFrameReadout.Activations? {
        switch self {
        case .linear(let l): l.forward(rows: rows, x, into: y, p); return nil
        case .conv(let c): return c.forward(rows: rows, x, into: y, p)
        }
    }

    /// Accumulates the parameter gradients for `dy` (rows × D) at input `x` (rows × H') and writes
    /// `dx = ∂loss/∂x` (rows × H'). `cached`: what `forward` returned for exactly these rows, or nil to recompute.
    func backward(rows: Int, dy: UnsafePointer<Float>, input x: UnsafePointer<Float>,
                  cached: ConvFrameReadout.Activations?, into dx: UnsafeMutablePointer<Float>, _ p: Parameters) {
        switch self {
        case .linear(let l):
            l.accumulateGradients(rows: rows, dy: dy, input: x, p)
            l.backwardInput(rows: rows, dy: dy, into: dx, p)
        case .conv(let c): c.backward(rows: rows, dy: dy, input: x, cached: cached, into: dx, p)
        }
    }
}

/// A small convolutional frame decoder for pixel frames of side S (a multiple of 4) and C channels, built
/// from sub-pixel convolutions (Shi et al. 2016: a convolution to r²·channels, then a pixel shuffle by r):
///
///     fc      Linear H' → 16·(S/4)², viewed as 16 × S/4 × S/4, ReLU
///     conv1   3×3 16 → 64 (pad 1) at S/4, pixel shuffle ×2 → 16 × S/2 × S/2, ReLU
///     conv2   3×3 16 → 4·C (pad 1, no bias) at S/2, pixel shuffle ×2 → C × S × S
///     + frame_bias (C·S·S)                     logits, channel-major like the frames
///
/// (PyTorch: `fc`, `conv1`, `conv2` as `nn.Linear` / `nn.Conv2d`, `nn.PixelShuffle(2)`, and `frame_bias` an
/// `nn.Parameter`.) A linear readout draws a digit as a blurred template per hidden unit; the convolutions
/// draw local strokes that every position shares. Every convolution runs at a quarter of the resolution of its
/// output, so nothing is ever convolved at S × S. The per-pixel bias lets the readout start at the data's mean
/// frame with `conv2`'s weight at zero, as the linear readout does with its bias.
struct ConvFrameReadout {
    static let channels = 16
    let fc: Linear
    var conv1: Conv2d
    var conv2: Conv2d
    /// C × S × S.
    let frameBias: Param
    let frameSize: Int
    let outChannels: Int

    var frameDimension: Int { outChannels * frameSize * frameSize }

    init(_ name: String, hiddenSize: Int, frameSize: Int, channels: Int, layout: inout ParameterLayout) {
        precondition(frameSize % 4 == 0, "a convolutional readout needs a frame side divisible by 4")
        let q = frameSize / 4, c = ConvFrameReadout.channels
        fc = Linear(name + ".fc", inFeatures: hiddenSize, outFeatures: c * q * q, layout: &layout)
        conv1 = Conv2d(name + ".conv1", inChannels: c, outChannels: 4 * c, kernelSize: 3, padding: 1, layout: &layout)
        conv2 = Conv2d(name + ".conv2", inChannels: c, outChannels: 4 * channels, kernelSize: 3, padding: 1, bias: false,
                       layout: &layout)
        // Few channels on small planes: Winograd's transforms would cost more than the GEMMs they shrink, and a
        // batch-wide im2col matrix goes through memory, so im2col one frame at a time in each worker's cache.
        conv1.winogradOverride = false
        conv2.winogradOverride = false
        conv1.imageParallel = true
        conv2.imageParallel = true
        frameBias = layout.add(name + ".frame_bias", [channels * frameSize * frameSize])
        self.frameSize = frameSize
        outChannels = channels
    }

    /// PyTorch's defaults for `fc`, `conv1` and `conv2`; `frame_bias` starts at zero.
    func initializePyTorchDefault(_ p: Parameters, rng: inout RNG) {
        fc.initializePyTorchDefault(p, rng: &rng)
        conv1.initializePyTorchDefault(p, rng: &rng)
        conv2.initializePyTorchDefault(p, rng: &rng)
        p.value(frameBias).update(repeating: 0, count: frameBias.count)
    }

    /// What backward needs from forward: the inputs of `conv1` and `conv2`.
    struct Activations {
        /// ReLU(fc(x)): rows × 16 × S/4 × S/4.
        var first: Tensor
        /// ReLU(shuffle(conv1(first))): rows × 16 × S/2 × S/2.
        var second: Tensor
    }

    func forward(rows: Int, _ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, _ p: Parameters) -> Activations {
        let c = ConvFrameReadout.channels, q = frameSize / 4
        var first = Tensor(shape: [rows, c, q, q], unsafeUninitialized: { _ in })
        if rows > 0 {
            first.withUnsafeMutableBufferPointer { fb in
                fc.forward(rows: rows, x, into: fb.baseAddress!, p)
                Kernels.relu(fb.count, fb.baseAddress!, fb.baseAddress!)
            }
        }
        let second = conv1.forwardPixelShuffled(first, p, relu: true)
        let logits = conv2.forward(second, p)
        let d = frameDimension, bias = UnsafePointer(p.value(frameBias))
        logits.withUnsafeBufferPointer { lb in
            PixelShuffle.shuffle(lb.baseAddress!, into: y, images: rows, channels: outChannels, height: 2 * q, width: 2 * q)
        }
        for r in 0..<rows { Kernels.add(d, y + r * d, bias, y + r * d) }
        return Activations(first: first, second: second)
    }

    func backward(rows: Int, dy: UnsafePointer<Float>, input x: UnsafePointer<Float>, cached: Activations?,
                  into dx: UnsafeMutablePointer<Float>, _ p: Parameters) {
        if rows == 0 { return }
        let a: Activations
        if let cached { a = cached } else {
            // Recompute (the decoder stepped its readout one step at a time and kept nothing).
            var scratch = [Float](repeating: 0, count: rows * frameDimension)
            a = forward(rows: rows, x, into: &scratch, p)
        }
        let d = frameDimension, q = frameSize / 4
        Linear.accumulateColumnSums(rows: rows, columns: d, dy, ld: d, into: p.grad(frameBias))
        // shuffle ← conv2 ← (ReLU ← shuffle ← conv1, fused) ← ReLU ← fc
        var dConv2 = Tensor(shape: [rows, 4 * outChannels, 2 * q, 2 * q], unsafeUninitialized: { _ in })
        dConv2.withUnsafeMutableBufferPointer {
            PixelShuffle.shuffle(dy, into: $0.baseAddress!, images: rows, channels: outChannels, height: 2 * q, width: 2 * q,
                                 inverse: true)
        }
        let dSecond = conv2.backward(dConv2, input: a.second, p)
        var dFirst = conv1.backwardPixelShuffled(dSecond, input: a.first, reluOutput: a.second, p)
        ReLU().backward(inPlace: &dFirst, output: a.first)
        dFirst.withUnsafeBufferPointer { df in
            fc.accumulateGradients(rows: rows, dy: df.baseAddress!, input: x, p)
            fc.backwardInput(rows: rows, dy: df.baseAddress!, into: dx, p)
        }
    }
}
