import CaptionSupport
import Foundation
import NN
import TensorCore

/// How tensor names in a weights file relate to the encoder's (torchvision) names.
public enum TensorNaming: String, Sendable {
    /// torchvision's module tree: `conv1`, `bn1`, `layer1.0.conv1`, `features.28` (also the compact net's).
    case torchvision
    /// The sgrvinod tutorial's `Encoder`: `nn.Sequential(*list(resnet.children())[:-2])` under `resnet.`, so
    /// `resnet.0` = conv1, `resnet.1` = bn1, `resnet.4` … `resnet.7` = layer1 … layer4.
    case tutorial

    /// The tutorial naming when any tensor starts with `resnet.`, else torchvision's.
    public static func detect(_ names: [String]) -> TensorNaming {
        names.contains { $0.hasPrefix("resnet.") } ? .tutorial : .torchvision
    }

    /// The encoder's name for a file's tensor name (nil: no counterpart, e.g. `resnet.8.…`).
    func canonical(_ fileName: String) -> String? {
        switch self {
        case .torchvision: return fileName
        case .tutorial:
            guard fileName.hasPrefix("resnet.") else { return nil }
            let rest = fileName.dropFirst("resnet.".count)
            guard let dot = rest.firstIndex(of: "."), let child = Int(rest[..<dot]) else { return nil }
            let module: String
            switch child {
            case 0: module = "conv1"
            case 1: module = "bn1"
            case 4...7: module = "layer\(child - 3)"
            default: return nil
            }
            return module + rest[dot...]
        }
    }
}

extension Encoder {
    /// Copies every parameter and BatchNorm buffer from a safetensors file, strictly:
    /// each encoder tensor must be present with its exact shape and a floating-point dtype, and the file may
    /// hold nothing else. `num_batches_tracked` (I64 in PyTorch) is accepted and ignored, present or not.
    /// `ignoringPrefixes` lists name prefixes that may be present and are skipped (a classifier head).
    /// Errors name the file and the first problem (and how many more there are).
    public func load(from file: SafeTensorsFile, naming: TensorNaming? = nil, ignoringPrefixes: [String] = []) throws {
        let naming = naming ?? TensorNaming.detect(file.names)
        let layout = parameters.layout
        var fileNameOf: [String: String] = [:]   // canonical name → name in the file
        var unexpected: [String] = []
        for name in file.names {
            if name.hasSuffix("num_batches_tracked") || ignoringPrefixes.contains(where: { name.hasPrefix($0) }) {
                continue
            }
            if let c = naming.canonical(name), layout.param(named: c) != nil, fileNameOf[c] == nil {
                fileNameOf[c] = name
            } else {
                unexpected.append(name)
            }
        }
        func fail(_ problems: [String]) -> CaptionError {
            let more = problems.count > 1 ? " (and \(problems.count - 1) more)" : ""
            return CaptionError(file: file.path, problems[0] + more)
        }
        let wanted = layout.params.filter { !$0.name.hasSuffix("num_batches_tracked") }
        let missing = wanted.filter { fileNameOf[$0.name] == nil }.map(\.name)
        if !missing.isEmpty {
            let hint = naming == .tutorial ? " (tutorial naming)" : ""
            throw fail(missing.map { "missing tensor \($0) for \(architecture)\(hint)" })
        }
        if !unexpected.isEmpty { throw fail(unexpected.map { "unexpected tensor \($0) for \(architecture)" }) }
        for p in wanted {
            let name = fileNameOf[p.name]!
            let info = file.info(name)!
            if info.shape != p.shape {
                throw CaptionError(file: file.path, "tensor \(name) has shape \(info.shape), expected \(p.shape) for \(architecture)")
            }
            switch info.dtype {
            case .F32:
                let bytes = try file.bytes(name)
                memcpy(parameters.value(p), bytes.baseAddress!, p.count * 4)
            case .F16, .BF16, .F64:
                parameters.set(p, try file.tensor(name).reshaped(p.shape))
            default:
                throw CaptionError(file: file.path, "tensor \(name) has dtype \(info.dtype.rawValue), expected a floating-point type")
            }
        }
        invalidateInferenceWeights()
    }

    /// Writes every parameter and buffer under torchvision's names (F32; `num_batches_tracked` as I64 scalars,
    /// as PyTorch saves them). Atomic.
    public func save(to path: String, metadata: [String: String] = [:]) throws {
        var w = SafeTensorsWriter()
        w.metadata = metadata
        for p in parameters.layout.params {
            if p.name.hasSuffix("num_batches_tracked") {
                w.add(p.name, shape: [], int64: [Int64(parameters.value(p).pointee)])
            } else {
                w.add(p.name, parameters.tensor(p))
            }
        }
        try w.write(to: path)
    }
}

/// Works out which architecture a bare state_dict file holds from its tensor names and shapes, as
/// scripts/convert_checkpoint.py does (plus the first-stage width, so reduced-width models load too).
public enum ArchitectureInference {
    /// The architecture and tensor naming of `file`'s tensors; throws when they match no supported encoder.
    public static func infer(_ file: SafeTensorsFile) throws -> (Architecture, TensorNaming) {
        let names = Set(file.names)
        let naming = TensorNaming.detect(file.names)
        func shape(_ n: String) -> [Int]? { file.info(n)?.shape }
        // ResNet: conv1/layerN (torchvision) or resnet.0/resnet.4..7 (tutorial).
        let stem = naming == .tutorial ? "resnet.0.weight" : "conv1.weight"
        if let s = shape(stem), s.count == 4 {
            let stagePrefix: (Int) -> String = { naming == .tutorial ? "resnet.\($0 + 3)." : "layer\($0)." }
            var blocks: [Int] = [], bottleneck = false
            for stage in 1...4 {
                let p = stagePrefix(stage)
                let indices = Set(names.filter { $0.hasPrefix(p) }.compactMap { Int($0.dropFirst(p.count).split(separator: ".").first ?? "") })
                blocks.append(indices.count)
                bottleneck = bottleneck || names.contains { $0.hasPrefix(p) && $0.contains(".conv3.") }
            }
            guard let depth = Architecture.resnetLayouts.first(where: { $0.value.blocks == blocks && $0.value.bottleneck == bottleneck })?.key else {
                throw CaptionError(file: file.path, "unknown ResNet layout: blocks \(blocks) per stage, bottleneck \(bottleneck)")
            }
            return (.resnet(depth: depth, width: s[0]), naming)
        }
        // VGG: features.N.weight of rank 4 are the convolutions; running_mean means BatchNorm.
        let convs = names.filter { $0.hasPrefix("features.") && $0.hasSuffix(".weight") && shape($0)?.count == 4 }
        if !convs.isEmpty, let first = shape("features.0.weight") {
            let bn = names.contains { $0.hasPrefix("features.") && $0.hasSuffix(".running_mean") }
            let depth = [13: 16, 16: 19][convs.count]
            guard let depth else {
                throw CaptionError(file: file.path, "a VGG with \(convs.count) convolutions is not supported (VGG-16 has 13, VGG-19 16)")
            }
            return (.vgg(depth: depth, batchNorm: bn, width: first[0]), .torchvision)
        }
        // The compact net: layers.i.conv.weight.
        let compact = (0...).prefix { shape("layers.\($0).conv.weight") != nil }.map { shape("layers.\($0).conv.weight")! }
        if !compact.isEmpty {
            throw CaptionError(file: file.path, "a compact encoder needs its config.json (strides are not in the tensors)")
        }
        throw CaptionError(file: file.path, "cannot recognise the encoder: no ResNet (conv1/layerN or resnet.N) or VGG (features.N) tensors")
    }
}
