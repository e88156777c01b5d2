import CaptionSupport
import Foundation
import Imaging
import TensorCore

/// The `encoder` and `preprocess` sections of a model folder's `config.json` (the layout
/// scripts/convert_checkpoint.py writes):
///
/// ```json
/// "encoder": {"arch": "resnet101", "weights": "encoder.safetensors", "naming": "tutorial",
///             "pool": [14, 14], "output": "layer4"},
/// "preprocess": {"size": 256, "resize": "bilinear", "center_crop": null,
///                "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
/// ```
///
/// `arch` is a torchvision name (`resnet18`…`resnet152`, `vgg16`, `vgg16_bn`, `vgg19`, `vgg19_bn`) or
/// `compact`; optional `width` (first-stage channels, default 64) gives a narrower ResNet/VGG, and a compact
/// net takes `channels` and `strides` arrays (defaults: `CompactNetSpec()`). `naming` (`torchvision` |
/// `tutorial`) is detected from the tensor names when absent. `pool` is `[H, W]`, a single size, or null.
/// `output` must be the architecture's last map (`layer4`; `conv5_4`/`conv5_3`/`conv5` for VGG) when given.
public struct EncoderConfig: Equatable, Sendable {
    /// The CNN (`arch`, `width`, and a compact net's `channels` and `strides`).
    public var architecture: Architecture
    /// Weights file, relative to the model folder.
    public var weights: String
    /// How the weights file names its tensors; nil: detected from the names.
    public var naming: TensorNaming?
    /// The adaptive average pool's H'×W' output, or nil to keep the CNN's own grid.
    public var pool: GridSize?
    /// The `preprocess` section: resize, crop and normalisation.
    public var preprocessing: Preprocessing

    /// A configuration with the given fields (weights default to `encoder.safetensors`).
    public init(architecture: Architecture, weights: String = "encoder.safetensors", naming: TensorNaming? = nil,
                pool: GridSize? = nil, preprocessing: Preprocessing) {
        self.architecture = architecture
        self.weights = weights
        self.naming = naming
        self.pool = pool
        self.preprocessing = preprocessing
    }

    /// The defaults for a bare torchvision state_dict (as scripts/convert_checkpoint.py writes them):
    /// 224×224 bilinear, ImageNet mean/std; ResNets pooled to 14×14, VGG's conv5 map as is.
    public static func torchvisionDefaults(_ arch: Architecture) -> EncoderConfig {
        var pool: GridSize? = GridSize(height: 14, width: 14)
        if case .vgg = arch { pool = nil }
        return EncoderConfig(architecture: arch, pool: pool,
                             preprocessing: Preprocessing(resizeWidth: 224, resizeHeight: 224))
    }

    /// Parses `config.json` (the whole file; only `encoder` and `preprocess` are read) with the package's JSON
    /// reader, so a syntax error names its line and column.
    public init(contentsOf path: String) throws {
        let (input, root) = try JSONInput.load(path)
        try self.init(json: try input.object(root, "top level"), file: path)
    }

    /// Parses an already-decoded `config.json` object (as `JSONSerialization` gives it); `file` names it in errors.
    /// Absent and null values read as their defaults.
    public init(json root: [String: Any], file: String) throws {
        func bad(_ what: String) -> CaptionError { CaptionError(file: file, what) }
        guard let enc = root["encoder"] as? [String: Any] else { throw bad("no \"encoder\" object") }
        guard let archName = enc["arch"] as? String else { throw bad("encoder.arch: missing or not a string") }
        func int(_ v: Any?, _ key: String) throws -> Int? {
            guard let v, !(v is NSNull) else { return nil }
            guard let n = v as? NSNumber, !JSONInput.isBool(n), let i = Int(exactly: n.doubleValue), i > 0 else {
                throw bad("\(key): expected a positive integer")
            }
            return i
        }
        func ints(_ v: Any?, _ key: String) throws -> [Int]? {
            guard let v, !(v is NSNull) else { return nil }
            guard let a = v as? [Any], !a.isEmpty else { throw bad("\(key): expected a list of positive integers") }
            return try a.map {
                guard let i = try int($0, key) else { throw bad("\(key): expected a positive integer") }
                return i
            }
        }
        func floats(_ v: Any?, _ key: String) throws -> [Float]? {
            guard let v, !(v is NSNull) else { return nil }
            guard let a = v as? [Any], a.count == 3 else { throw bad("\(key): expected 3 numbers (R, G, B)") }
            return try a.map {
                guard let n = $0 as? NSNumber, !JSONInput.isBool(n) else { throw bad("\(key): expected 3 numbers (R, G, B)") }
                return n.floatValue
            }
        }
        let width = try int(enc["width"], "encoder.width") ?? 64
        guard var arch = Architecture(name: archName, width: width) else {
            throw bad("encoder.arch: unknown architecture \"\(archName)\" (expected resnet18/34/50/101/152, vgg16[_bn], vgg19[_bn] or compact)")
        }
        if case .compact = arch {
            let defaults = CompactNetSpec()
            let channels = try ints(enc["channels"], "encoder.channels") ?? defaults.channels
            let strides = try ints(enc["strides"], "encoder.strides") ?? defaults.strides
            guard channels.count == strides.count else {
                throw bad("encoder.channels has \(channels.count) entries but encoder.strides \(strides.count)")
            }
            arch = .compact(CompactNetSpec(channels: channels, strides: strides))
        }
        if let output = enc["output"], !(output is NSNull) {
            let allowed: [String]
            switch arch {
            case .resnet: allowed = ["layer4"]
            case .vgg: allowed = ["conv5_4", "conv5_3", "conv5", "features"]
            case .compact: allowed = ["layers", "features"]
            }
            guard let o = output as? String, allowed.contains(o) else {
                throw bad("encoder.output: \(output) is not supported for \(arch.name) (expected \(allowed.joined(separator: " or ")))")
            }
        }
        var weights = "encoder.safetensors"
        if let w = enc["weights"], !(w is NSNull) {
            guard let s = w as? String else { throw bad("encoder.weights: expected a string") }
            weights = s
        }
        var naming: TensorNaming?
        if let n = enc["naming"], !(n is NSNull) {
            guard let s = n as? String, let t = TensorNaming(rawValue: s) else {
                throw bad("encoder.naming: expected \"torchvision\" or \"tutorial\"")
            }
            naming = t
        }
        var pool: GridSize?
        if let p = enc["pool"], !(p is NSNull) {
            if let size = try? int(p, "encoder.pool") { pool = GridSize(height: size, width: size) }
            else if let hw = try? ints(p, "encoder.pool"), hw.count == 2 { pool = GridSize(height: hw[0], width: hw[1]) }
            else { throw bad("encoder.pool: expected [H, W], a size, or null") }
        }
        guard let pre = root["preprocess"] as? [String: Any] else { throw bad("no \"preprocess\" object") }
        guard let size = try int(pre["size"], "preprocess.size") else { throw bad("preprocess.size: missing") }
        if let r = pre["resize"], !(r is NSNull), (r as? String) != "bilinear" {
            throw bad("preprocess.resize: only \"bilinear\" is supported")
        }
        let crop = try int(pre["center_crop"], "preprocess.center_crop")
        let preprocessing = Preprocessing(resizeWidth: size, resizeHeight: size, cropWidth: crop, cropHeight: crop,
                                          mean: try floats(pre["mean"], "preprocess.mean") ?? Preprocessing.imageNetMean,
                                          std: try floats(pre["std"], "preprocess.std") ?? Preprocessing.imageNetStd)
        do { try preprocessing.validate() } catch let e as CaptionError { throw bad("preprocess: \(e.problem)") }
        self.init(architecture: arch, weights: weights, naming: naming, pool: pool, preprocessing: preprocessing)
    }
}

/// An H×W grid size (the adaptive pool's output).
public struct GridSize: Equatable, Sendable {
    /// Rows H.
    public var height: Int
    /// Columns W.
    public var width: Int
    /// A grid of `height` rows by `width` columns.
    public init(height: Int, width: Int) {
        self.height = height
        self.width = width
    }
}

extension Encoder {
    /// Builds the encoder a config describes (parameters zero until loaded or initialised).
    public convenience init(config: EncoderConfig) {
        self.init(config.architecture, pool: config.pool)
    }

    /// Loads an encoder from a model folder (`config.json` + its encoder weights) or from a bare
    /// torchvision / tutorial-encoder safetensors file (architecture inferred from the tensors, torchvision
    /// defaults for the rest; a classifier head `fc.*` / `classifier.*` is skipped).
    /// BatchNorm is folded for inference here, once; the mapped file is released before that.
    public static func load(path: String) throws -> (encoder: Encoder, config: EncoderConfig) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw CaptionError(file: path, "no such file or directory", kind: .notFound)
        }
        let encoder: Encoder, config: EncoderConfig
        if isDirectory.boolValue {
            let configPath = (path as NSString).appendingPathComponent("config.json")
            guard FileManager.default.fileExists(atPath: configPath) else {
                throw CaptionError(file: path, "not a model folder (no config.json)")
            }
            config = try EncoderConfig(contentsOf: configPath)
            let weightsPath = (path as NSString).appendingPathComponent(config.weights)
            encoder = Encoder(config: config)
            try encoder.load(from: SafeTensorsFile(path: weightsPath), naming: config.naming)
        } else {
            let file = try SafeTensorsFile(path: path)
            let (arch, naming) = try ArchitectureInference.infer(file)
            config = EncoderConfig.torchvisionDefaults(arch)
            encoder = Encoder(config: config)
            try encoder.load(from: file, naming: naming, ignoringPrefixes: ["fc.", "classifier."])
        }
        let s = (config.preprocessing.outputHeight, config.preprocessing.outputWidth)
        let grid = encoder.featureMapSize(height: s.0, width: s.1)
        guard grid.height > 0 && grid.width > 0 else {
            throw CaptionError(file: path, "a \(s.0)×\(s.1) input is too small for \(config.architecture)")
        }
        encoder.refreshInferenceWeights()
        return (encoder, config)
    }
}
