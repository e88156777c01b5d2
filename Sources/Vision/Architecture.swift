import NN
import TensorCore

/// The CNN families an `Encoder` can be.
///
/// `width` is the channel count of the first stage (64 in torchvision); every later stage scales with it
/// (ResNet stages `w, 2w, 4w, 8w` (×4 for bottlenecks), VGG blocks `w, 2w, 4w, 8w, 8w`). Smaller widths give
/// the same topology and tensor names with fewer channels: the parity tests use them to keep fixtures small.
public enum Architecture: Equatable, Sendable, CustomStringConvertible {
    /// torchvision ResNet-18/34 (BasicBlock) or 50/101/152 (Bottleneck, v1.5: stride on the 3×3).
    case resnet(depth: Int, width: Int = 64)
    /// torchvision VGG-16/19 (configs D/E), optionally with BatchNorm, up to the last conv+ReLU before the
    /// final max pool (the paper's conv5_4 / conv5_3 map: 14×14×512 at 224).
    case vgg(depth: Int, batchNorm: Bool, width: Int = 64)
    /// The compact Conv–BN–ReLU stack of the shipped model (see `CompactNetSpec`).
    case compact(CompactNetSpec)

    /// Blocks per stage and block type of each ResNet depth.
    static let resnetLayouts: [Int: (blocks: [Int], bottleneck: Bool)] = [
        18: ([2, 2, 2, 2], false), 34: ([3, 4, 6, 3], false),
        50: ([3, 4, 6, 3], true), 101: ([3, 4, 23, 3], true), 152: ([3, 8, 36, 3], true),
    ]

    /// Conv widths per VGG block (as multiples of `width`) and convs per block.
    static let vggConvsPerBlock: [Int: [Int]] = [16: [2, 2, 3, 3, 3], 19: [2, 2, 4, 4, 4]]

    /// Parses torchvision's model names: `resnet18` … `resnet152`, `vgg16`, `vgg16_bn`, `vgg19`, `vgg19_bn`,
    /// and `compact` (default spec). Returns nil for anything else.
    public init?(name: String, width: Int = 64) {
        if name == "compact" { self = .compact(CompactNetSpec()); return }
        if name.hasPrefix("resnet"), let d = Int(name.dropFirst(6)), Architecture.resnetLayouts[d] != nil {
            self = .resnet(depth: d, width: width); return
        }
        if name.hasPrefix("vgg") {
            let bn = name.hasSuffix("_bn")
            let digits = name.dropFirst(3).dropLast(bn ? 3 : 0)
            if let d = Int(digits), Architecture.vggConvsPerBlock[d] != nil {
                self = .vgg(depth: d, batchNorm: bn, width: width); return
            }
        }
        return nil
    }

    /// torchvision's name (`resnet101`, `vgg16_bn`) or `compact`.
    public var name: String {
        switch self {
        case .resnet(let d, _): return "resnet\(d)"
        case .vgg(let d, let bn, _): return "vgg\(d)" + (bn ? "_bn" : "")
        case .compact: return "compact"
        }
    }

    /// For messages: `name`, plus `(width W)` for a non-default width; a compact net adds its channels.
    public var description: String {
        switch self {
        case .resnet(_, let w) where w != 64, .vgg(_, _, let w) where w != 64: return "\(name) (width \(w))"
        case .compact(let s): return "compact \(s.channels)"
        default: return name
        }
    }

    /// Channels D of the final feature map.
    public var outputChannels: Int {
        switch self {
        case .resnet(let d, let w): return 8 * w * (Architecture.resnetLayouts[d]!.bottleneck ? 4 : 1)
        case .vgg(_, _, let w): return 8 * w
        case .compact(let s): return s.channels.last!
        }
    }
}

/// The compact encoder of the shipped model: 3×3 Conv–BN–ReLU layers, no residuals, no pooling; the
/// strides downsample. Designed for the synthetic shapes world (96–128 px images, 1–4 flat shapes):
/// the default (overall stride 8, 7 layers, 0.59 M parameters = 2.4 MB) maps 96 px to a 12×12×256 grid
/// (128 px → 16×16) at about 0.13 GMAC per 96 px image, with a 59 px receptive field.
///
/// PyTorch equivalent (tensor names `layers.{i}.conv.weight`, `layers.{i}.bn.{weight,bias,running_mean,...}`):
/// ```python
/// class ConvBNReLU(nn.Module):
///     def __init__(s, cin, cout, stride):
///         super().__init__(); s.conv = nn.Conv2d(cin, cout, 3, stride, 1, bias=False); s.bn = nn.BatchNorm2d(cout)
///     def forward(s, x): return F.relu(s.bn(s.conv(x)))
/// layers = nn.ModuleList(ConvBNReLU(cin, cout, s) for cin, cout, s in zip([3] + channels, channels, strides))
/// ```
public struct CompactNetSpec: Equatable, Sendable {
    /// Output channels of each layer.
    public var channels: [Int]
    /// Stride of each layer (1 or 2).
    public var strides: [Int]

    /// A compact net of one layer per entry; the default is the shipped model's 7 layers, overall stride 8.
    public init(channels: [Int] = [32, 32, 64, 64, 128, 128, 256], strides: [Int] = [2, 1, 2, 1, 2, 1, 1]) {
        precondition(!channels.isEmpty && channels.count == strides.count && channels.allSatisfy { $0 > 0 }
                     && strides.allSatisfy { $0 >= 1 }, "CompactNetSpec: one positive channel count and stride per layer")
        self.channels = channels
        self.strides = strides
    }
}

/// What building an architecture produces: the layers in order, each with its module name.
struct Graph {
    var layers: [Layer] = []
    /// Module path of each layer (`conv1`, `maxpool`, `layer2.0`, `features.28`, `layers.3`).
    var names: [String] = []
    var layout = ParameterLayout()
    var folded = FoldedLayout()

    mutating func append(_ name: String, _ layer: Layer) {
        layers.append(layer)
        names.append(name)
    }

    init(_ arch: Architecture) {
        switch arch {
        case .resnet(let depth, let w): buildResNet(depth: depth, width: w)
        case .vgg(let depth, let bn, let w): buildVGG(depth: depth, batchNorm: bn, width: w)
        case .compact(let spec): buildCompact(spec)
        }
    }

    /// torchvision `ResNet`: conv1–bn1–relu, maxpool 3/2/1, layer1…layer4 (avgpool and fc are not built).
    private mutating func buildResNet(depth: Int, width w: Int) {
        let (blocks, bottleneck) = Architecture.resnetLayouts[depth]!
        append("conv1", .conv(ConvUnit(conv: "conv1", bn: "bn1", in: 3, out: w, kernel: 7, stride: 2, padding: 3,
                                       relu: true, layout: &layout, folded: &folded)))
        append("maxpool", .maxPool(MaxPool2d(kernelSize: 3, stride: 2, padding: 1)))
        var inChannels = w
        for (stage, count) in blocks.enumerated() {
            let planes = w << stage
            for b in 0..<count {
                let name = "layer\(stage + 1).\(b)"
                let block = ResidualBlock(bottleneck: bottleneck, name: name, inChannels: inChannels, planes: planes,
                                          stride: b == 0 && stage > 0 ? 2 : 1, layout: &layout, folded: &folded)
                inChannels = block.outChannels
                append(name, .residual(block))
            }
        }
    }

    /// torchvision `VGG.features` (configs D/E) without its final max pool: `features.N` numbering counts
    /// Conv2d, [BatchNorm2d,] ReLU and MaxPool2d modules exactly as `make_layers` does.
    private mutating func buildVGG(depth: Int, batchNorm: Bool, width w: Int) {
        let perBlock = Architecture.vggConvsPerBlock[depth]!
        let blockChannels = [w, 2 * w, 4 * w, 8 * w, 8 * w]
        var index = 0, inChannels = 3
        for (block, convs) in perBlock.enumerated() {
            if block > 0 {
                append("features.\(index)", .maxPool(MaxPool2d(kernelSize: 2, stride: 2)))
                index += 1
            }
            for _ in 0..<convs {
                let unit = ConvUnit(conv: "features.\(index)", bn: batchNorm ? "features.\(index + 1)" : nil,
                                    in: inChannels, out: blockChannels[block], kernel: 3, padding: 1, convBias: true,
                                    relu: true, layout: &layout, folded: &folded)
                append("features.\(index)", .conv(unit))
                inChannels = blockChannels[block]
                index += batchNorm ? 3 : 2
            }
        }
    }

    private mutating func buildCompact(_ spec: CompactNetSpec) {
        var inChannels = 3
        for (i, (c, s)) in zip(spec.channels, spec.strides).enumerated() {
            append("layers.\(i)", .conv(ConvUnit(conv: "layers.\(i).conv", bn: "layers.\(i).bn", in: inChannels, out: c,
                                                 kernel: 3, stride: s, padding: 1, relu: true,
                                                 layout: &layout, folded: &folded)))
            inChannels = c
        }
    }
}
