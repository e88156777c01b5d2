import NN
import TensorCore

/// A torchvision residual block: `relu(main(x) + shortcut(x))`.
///
/// * BasicBlock (ResNet-18/34): main = conv3×3(stride)–BN–ReLU, conv3×3–BN.
/// * Bottleneck (ResNet-50/101/152, torchvision v1.5: the stride sits on the 3×3):
///   main = conv1×1–BN–ReLU, conv3×3(stride)–BN–ReLU, conv1×1–BN (4× the width).
/// * shortcut = identity, or `downsample` = conv1×1(stride)–BN when the shape changes.
///
/// The main path's last unit has `relu == false`; ReLU is applied after the addition.
struct ResidualBlock {
    let main: [ConvUnit]
    let downsample: ConvUnit?

    /// `name` is the block's module path, e.g. `layer2.0` (empty for a stand-alone block: `conv1.weight`).
    init(bottleneck: Bool, name: String, inChannels: Int, planes: Int, stride: Int,
         layout: inout ParameterLayout, folded: inout FoldedLayout) {
        let out = bottleneck ? planes * 4 : planes
        let name = name.isEmpty ? "" : name + "."
        var units: [ConvUnit] = []
        if bottleneck {
            units.append(ConvUnit(conv: "\(name)conv1", bn: "\(name)bn1", in: inChannels, out: planes,
                                  kernel: 1, relu: true, layout: &layout, folded: &folded))
            units.append(ConvUnit(conv: "\(name)conv2", bn: "\(name)bn2", in: planes, out: planes,
                                  kernel: 3, stride: stride, padding: 1, relu: true, layout: &layout, folded: &folded))
            units.append(ConvUnit(conv: "\(name)conv3", bn: "\(name)bn3", in: planes, out: out,
                                  kernel: 1, relu: false, layout: &layout, folded: &folded))
        } else {
            units.append(ConvUnit(conv: "\(name)conv1", bn: "\(name)bn1", in: inChannels, out: planes,
                                  kernel: 3, stride: stride, padding: 1, relu: true, layout: &layout, folded: &folded))
            units.append(ConvUnit(conv: "\(name)conv2", bn: "\(name)bn2", in: planes, out: out,
                                  kernel: 3, padding: 1, relu: false, layout: &layout, folded: &folded))
        }
        main = units
        if stride != 1 || inChannels != out {
            downsample = ConvUnit(conv: "\(name)downsample.0", bn: "\(name)downsample.1", in: inChannels,
                                  out: out, kernel: 1, stride: stride, relu: false, layout: &layout, folded: &folded)
        } else {
            downsample = nil
        }
    }

    var outChannels: Int { main.last!.outChannels }

    // MARK: Inference

    /// Inference: the last convolution and the downsample run without bias; their biases, the sum and the
    /// ReLU are then one pass over the block's output.
    func inference(_ x: Tensor, _ f: FoldedWeights, workspace: ConvWorkspace) -> Tensor {
        let shortcut = downsample?.inference(x, f, biasAndReLU: false, workspace: workspace) ?? x
        var h = x
        for u in main.dropLast() { h = u.inference(h, f, workspace: workspace) }
        h = main.last!.inference(h, f, biasAndReLU: false, workspace: workspace)
        InferenceKernels.addBiasReLU(&h, shortcut: shortcut, bias: main.last!.foldedBias(f), bias2: downsample?.foldedBias(f))
        return h
    }

    /// `h = max(h + identity, 0)` in place.
    static func addReLU(_ h: inout Tensor, _ identity: Tensor) {
        precondition(h.shape == identity.shape, "residual: main path \(h.shape) vs shortcut \(identity.shape)")
        let n = h.count
        identity.withUnsafeBufferPointer { ib in
            h.withUnsafeMutableBufferPointer { hb in
                let i = ib.baseAddress!, o = hb.baseAddress!
                let chunk = 1 << 14
                parallelFor((n + chunk - 1) / chunk, minChunk: n >= 1 << 17 ? 1 : Int.max) { c in
                    let lo = c * chunk, hi = min(n, lo + chunk)
                    for j in lo..<hi { o[j] = max(o[j] + i[j], 0) }
                }
            }
        }
    }

    // MARK: Training

    struct Cache {
        let main: [ConvUnit.Cache]
        let downsample: ConvUnit.Cache?
        /// The block's output (after the final ReLU): its mask.
        let output: Tensor
    }

    func forward(_ x: Tensor, _ p: Parameters, batchNorm: BatchNormMode, workspace: ConvWorkspace) -> (y: Tensor, cache: Cache) {
        var caches: [ConvUnit.Cache] = []
        var h = x
        for u in main {
            let (y, c) = u.forward(h, p, batchNorm: batchNorm, workspace: workspace)
            caches.append(c)
            h = y
        }
        var identity = x
        var dsCache: ConvUnit.Cache?
        if let downsample {
            let (y, c) = downsample.forward(x, p, batchNorm: batchNorm, workspace: workspace)
            identity = y
            dsCache = c
        }
        ResidualBlock.addReLU(&h, identity)
        return (h, Cache(main: caches, downsample: dsCache, output: h))
    }

    /// Accumulates the block's parameter gradients; returns dL/dx.
    func backward(_ dy: Tensor, cache: Cache, _ p: Parameters, workspace: ConvWorkspace) -> Tensor {
        let d = ReLU().backward(dy, output: cache.output)
        // The sum routes the same gradient into both paths.
        var dMain = d
        for (u, c) in zip(main, cache.main).reversed() {
            dMain = u.backward(dMain, cache: c, p, workspace: workspace)!
        }
        let dShortcut = downsample.map { $0.backward(d, cache: cache.downsample!, p, workspace: workspace)! } ?? d
        let n = dMain.count
        dShortcut.withUnsafeBufferPointer { s in
            dMain.withUnsafeMutableBufferPointer { m in Kernels.axpy(n, 1, s.baseAddress!, m.baseAddress!) }
        }
        return dMain
    }
}

/// One step of an encoder's feed-forward graph.
enum Layer {
    case conv(ConvUnit)
    case maxPool(MaxPool2d)
    case residual(ResidualBlock)

    enum Cache {
        case conv(ConvUnit.Cache)
        case maxPool(MaxPool2d.Cache)
        case residual(ResidualBlock.Cache)
        /// A layer run without a cache (frozen: no gradients flow through or into it).
        case frozen
    }

    /// Every convolution unit in this layer (for folding and initialisation).
    var units: [ConvUnit] {
        switch self {
        case .conv(let u): return [u]
        case .maxPool: return []
        case .residual(let b): return b.main + (b.downsample.map { [$0] } ?? [])
        }
    }

    func inference(_ x: Tensor, _ f: FoldedWeights, workspace: ConvWorkspace) -> Tensor {
        switch self {
        case .conv(let u): return u.inference(x, f, workspace: workspace)
        case .maxPool(let m): return InferenceKernels.maxPool(x, m)
        case .residual(let b): return b.inference(x, f, workspace: workspace)
        }
    }

    func forward(_ x: Tensor, _ p: Parameters, batchNorm: BatchNormMode, workspace: ConvWorkspace) -> (y: Tensor, cache: Cache) {
        switch self {
        case .conv(let u):
            let (y, c) = u.forward(x, p, batchNorm: batchNorm, workspace: workspace)
            return (y, .conv(c))
        case .maxPool(let m):
            let (y, c) = m.forward(x)
            return (y, .maxPool(c))
        case .residual(let b):
            let (y, c) = b.forward(x, p, batchNorm: batchNorm, workspace: workspace)
            return (y, .residual(c))
        }
    }

    /// Returns dL/dx, or nil when `inputGradient` is false (a network's first layer).
    func backward(_ dy: Tensor, cache: Cache, _ p: Parameters, inputGradient: Bool, workspace: ConvWorkspace) -> Tensor? {
        switch (self, cache) {
        case (.conv(let u), .conv(let c)):
            return u.backward(dy, cache: c, p, inputGradient: inputGradient, workspace: workspace)
        case (.maxPool(let m), .maxPool(let c)):
            return inputGradient ? m.backward(dy, cache: c) : nil
        case (.residual(let b), .residual(let c)):
            return b.backward(dy, cache: c, p, workspace: workspace)
        default:
            preconditionFailure("Layer.backward: cache does not belong to this layer")
        }
    }
}
