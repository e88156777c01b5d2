import NN
import TensorCore

/// How BatchNorm behaves in a training-mode forward pass.
public enum BatchNormMode: Sendable {
    /// PyTorch `train()`: normalise with the batch's statistics and update the running ones.
    case batchStatistics
    /// PyTorch `eval()` BatchNorm inside a trained network ("frozen BN"): normalise with the running
    /// statistics, which stay untouched; γ and β still get gradients. Good for small fine-tuning batches.
    case runningStatistics
}

/// Conv2d → optional BatchNorm2d → optional ReLU: the unit every encoder here is built from.
///
/// Two ways to run it:
/// * inference: one convolution with the BatchNorm folded into its weights and bias (computed once by
///   `fold(into:)`, stored in the encoder's `FoldedWeights`) and ReLU fused into the GEMM epilogue;
/// * training: conv, BatchNorm with batch (or running) statistics, ReLU as separate steps, returning a
///   `Cache` so that `backward` can accumulate every parameter gradient.
struct ConvUnit {
    let conv: Conv2d
    let bn: BatchNorm2d?
    let relu: Bool
    /// This unit's folded weight (`OC×C×K×K`, or its Winograd transform 16×OC×C when `winograd`) and bias
    /// (`OC`) in `FoldedWeights.values`.
    let foldedWeight: Int
    /// Inference runs `Conv2d.forwardWinograd` (3×3, stride 1, padding 1) instead of im2col + GEMM.
    let winograd: Bool
    let foldedBias: Int

    /// Registers `conv` (PyTorch name `convName`, e.g. `layer1.0.conv1`) and, when `bnName` is given,
    /// a BatchNorm2d after it. `convBias` defaults to "only without BatchNorm" (torchvision ResNet);
    /// torchvision's VGG-BN keeps the bias in front of its BatchNorm.
    init(conv convName: String, bn bnName: String?, in inChannels: Int, out outChannels: Int,
         kernel: Int, stride: Int = 1, padding: Int = 0, convBias: Bool? = nil, relu: Bool,
         layout: inout ParameterLayout, folded: inout FoldedLayout) {
        conv = Conv2d(convName, inChannels: inChannels, outChannels: outChannels, kernelSize: kernel,
                      stride: stride, padding: padding, bias: convBias ?? (bnName == nil), layout: &layout)
        bn = bnName.map { BatchNorm2d($0, channels: outChannels, layout: &layout) }
        self.relu = relu
        winograd = conv.supportsWinograd
        foldedWeight = folded.reserve(winograd ? conv.winogradWeightCount : conv.weight.count)
        foldedBias = folded.reserve(outChannels)
    }

    var outChannels: Int { conv.outChannels }

    // MARK: Initialisation

    /// torchvision's ResNet/VGG-BN initialisation: Kaiming-normal (fan_out, ReLU) weights, γ = 1, β = 0.
    func initialize(_ p: Parameters, rng: inout RNG, zeroGamma: Bool = false) {
        conv.initializeKaimingNormal(p, rng: &rng)
        bn?.initialize(p, rng: &rng, zeroGamma: zeroGamma)
    }

    // MARK: Inference

    /// Writes `W' = W·γ/√(var+ε)`, `b' = β + (b − mean)·γ/√(var+ε)` (or plain `W`, `b` without BatchNorm);
    /// for a Winograd unit, W' goes through `Conv2d.winogradWeights` one output channel at a time.
    func fold(_ p: Parameters, into f: FoldedWeights) {
        let w = f.values + foldedWeight, b = f.values + foldedBias
        // BatchNorm2d.fold's formula, written straight into the buffer (no temporary tensors: folding a ResNet-101
        // would otherwise churn through its whole weight size in short-lived allocations). A Winograd unit folds
        // each output channel into `row` and transforms it from there.
        let perOut = conv.weight.count / outChannels
        let src = p.value(conv.weight), convBias = conv.bias.map { p.value($0) }
        withUnsafeTemporaryAllocation(of: Float.self, capacity: winograd ? perOut : 0) { row in
            for o in 0..<outChannels {
                let dst = winograd ? row.baseAddress! : w + o * perOut, weights = src + o * perOut
                if let bn {
                    let variance = p.value(bn.runningVar)[o]
                    let scale = p.value(bn.weight)[o] / (variance + bn.eps).squareRoot()
                    for i in 0..<perOut { dst[i] = weights[i] * scale }
                    b[o] = p.value(bn.bias)[o] + ((convBias?[o] ?? 0) - p.value(bn.runningMean)[o]) * scale
                } else {
                    dst.update(from: weights, count: perOut)
                    b[o] = convBias?[o] ?? 0
                }
                if winograd { conv.winogradWeights(outChannel: o, weights: dst, into: w) }
            }
        }
    }

    /// `x: N×C×H×W → N×OC×OH×OW` with folded weights and ReLU fused. A residual block's last unit and its
    /// downsample pass `biasAndReLU: false` and add their biases and apply ReLU after the sum, in one pass.
    func inference(_ x: Tensor, _ f: FoldedWeights, biasAndReLU: Bool = true, workspace: ConvWorkspace) -> Tensor {
        if winograd {
            return conv.forwardWinograd(x, transformedWeight: f.values + foldedWeight,
                                        bias: biasAndReLU ? f.values + foldedBias : nil, relu: biasAndReLU && relu,
                                        workspace: workspace)
        }
        return conv.forward(x, weight: f.values + foldedWeight, bias: biasAndReLU ? f.values + foldedBias : nil,
                     relu: biasAndReLU && relu, workspace: workspace)
    }

    /// The folded bias (`OC`), for callers that add it themselves.
    func foldedBias(_ f: FoldedWeights) -> UnsafePointer<Float> { UnsafePointer(f.values + foldedBias) }

    // MARK: Training

    /// What `backward` needs: the unit's input, the convolution's output when BatchNorm follows it,
    /// BatchNorm's statistics, and the unit's output (ReLU's mask).
    struct Cache {
        let input: Tensor
        let convOutput: Tensor?
        let bnCache: BatchNorm2d.Cache?
        let output: Tensor
    }

    /// Training-mode forward. Without BatchNorm the bias and ReLU are fused into the convolution.
    func forward(_ x: Tensor, _ p: Parameters, batchNorm mode: BatchNormMode, workspace: ConvWorkspace) -> (y: Tensor, cache: Cache) {
        guard let bn else {
            let y = conv.forward(x, p, relu: relu, workspace: workspace)
            return (y, Cache(input: x, convOutput: nil, bnCache: nil, output: y))
        }
        let z = conv.forward(x, p, workspace: workspace)
        var (y, bnCache) = bn.forward(z, p, training: mode == .batchStatistics)
        if relu { ReLU().forward(inPlace: &y) }
        return (y, Cache(input: x, convOutput: z, bnCache: bnCache, output: y))
    }

    /// Accumulates the unit's parameter gradients from `dy` (the gradient of its output) and returns the
    /// gradient of its input, or nil when `inputGradient` is false (first layer of a network).
    func backward(_ dy: Tensor, cache: Cache, _ p: Parameters, inputGradient: Bool = true,
                  workspace: ConvWorkspace) -> Tensor? {
        // Out of place: masking `dy` in place would first copy it (the caller still holds it).
        var d = relu ? ReLU().backward(dy, output: cache.output) : dy
        if let bn, let z = cache.convOutput, let bc = cache.bnCache {
            d = bn.backward(d, input: z, cache: bc, p)
        }
        if inputGradient { return conv.backward(d, input: cache.input, p, workspace: workspace) }
        conv.accumulateParameterGradients(d, input: cache.input, p, workspace: workspace)
        return nil
    }
}

/// Assigns ranges of the folded-weights buffer while a network is built (like `ParameterLayout`).
struct FoldedLayout {
    private(set) var count = 0
    mutating func reserve(_ n: Int) -> Int {
        defer { count += n }
        return count
    }
}

/// The inference copy of a network's convolution weights with BatchNorm folded in: one flat buffer,
/// rewritten whenever the parameters change (`Encoder.refreshInferenceWeights`). Its memory is taken only on
/// the first fold (so loading a checkpoint never holds the mapped file, the parameters and this copy at once,
/// and a network that only trains never pays for it).
final class FoldedWeights {
    let count: Int
    private var storage: UnsafeMutablePointer<Float>?

    init(count: Int) { self.count = count }

    /// The buffer (`count` floats); allocated, uninitialised, on first access: `fold` writes all of it.
    var values: UnsafeMutablePointer<Float> {
        if let storage { return storage }
        let p = UnsafeMutablePointer<Float>.allocate(capacity: max(1, count))
        storage = p
        return p
    }

    deinit { storage?.deallocate() }
}
