import CaptionSupport
import Foundation
import NN
import TensorCore

/// The distribution of reconstruction errors (mean per-frame loss of a sequence, free-running) over training
/// sequences, stored in the model folder as `anomaly.json`. A new sequence's error is scored against it.
public struct AnomalyStatistics: Codable, Equatable, Sendable {
    /// `bce` or `mse`: what the errors measure.
    public var loss: String
    /// Number of training sequences measured.
    public var sequences: Int
    /// Mean of the training errors.
    public var mean: Double
    /// Sample standard deviation (n − 1) of the training errors.
    public var std: Double
    /// The error at percentiles 0, 1, …, 100 (linear interpolation between order statistics).
    public var percentiles: [Double]

    /// The statistics of `errors` (at least one), each a sequence's mean per-frame `loss`.
    public init(errors: [Double], loss: VideoModelConfig.Loss) {
        precondition(!errors.isEmpty)
        self.loss = loss.rawValue
        sequences = errors.count
        let average = errors.reduce(0, +) / Double(errors.count)
        mean = average
        std = (errors.map { ($0 - average) * ($0 - average) }.reduce(0, +) / Double(max(errors.count - 1, 1))).squareRoot()
        let sorted = errors.sorted()
        percentiles = (0...100).map { q in
            let position = Double(q) / 100 * Double(sorted.count - 1)
            let lo = Int(position.rounded(.down)), hi = min(lo + 1, sorted.count - 1)
            return sorted[lo] + (sorted[hi] - sorted[lo]) * (position - Double(lo))
        }
    }

    /// The anomaly score of a reconstruction error: its z-score against the training errors, and the share
    /// of training sequences (in percent, interpolated) reconstructed better.
    public func score(_ error: Double) -> (z: Double, percentile: Double) {
        let z = std > 0 ? (error - mean) / std : 0
        guard let first = percentiles.first, let last = percentiles.last else { return (z, 50) }
        if error <= first { return (z, 0) }
        if error >= last { return (z, 100) }
        var q = 0
        while q < 99 && percentiles[q + 1] < error { q += 1 }
        let span = percentiles[q + 1] - percentiles[q]
        return (z, Double(q) + (span > 0 ? (error - percentiles[q]) / span : 0))
    }

    enum CodingKeys: String, CodingKey { case loss, sequences, mean, std, percentiles }
}

/// How a shipped model was trained: written into `config.json` for the record, never read back to build it.
public struct VideoTrainingSummary: Codable, Equatable, Sendable {
    /// Where the sequences came from (`VideoTrainingSource.description`: a folder, or `synthetic:N:seed=S`).
    public var data: String
    /// Number of training sequences.
    public var sequences: Int
    /// Optimiser steps taken.
    public var steps: Int
    /// Sequences per step.
    public var batchSize: Int
    /// Wall-clock seconds of the training loop (data loading not included).
    public var seconds: Double
    /// The hyper-parameters of the run.
    public var options: VideoTrainingOptions

    /// A summary with the given fields.
    public init(data: String, sequences: Int, steps: Int, batchSize: Int, seconds: Double, options: VideoTrainingOptions) {
        self.data = data
        self.sequences = sequences
        self.steps = steps
        self.batchSize = batchSize
        self.seconds = seconds
        self.options = options
    }

    enum CodingKeys: String, CodingKey { case data, sequences, steps, batchSize = "batch_size", seconds, options }
}

/// A video model folder: `config.json` (`{"video": VideoModelConfig, "weights": FILE, "training": …}`), the
/// weights (`model.safetensors`, PyTorch-style names) and `anomaly.json` (`AnomalyStatistics`).
public enum VideoModelFolder {
    /// The configuration file's name in the folder.
    public static let configFile = "config.json"
    /// The weights file's name that `save` writes (`config.json`'s `weights` may name another).
    public static let weightsFile = "model.safetensors"
    /// The anomaly statistics file's name in the folder.
    public static let anomalyFile = "anomaly.json"

    struct ConfigFile: Codable {
        var video: VideoModelConfig
        var weights: String
        var training: VideoTrainingSummary?
    }

    /// Writes the model into `folder` (created if needed). Each file is written atomically, config.json last.
    /// `half` stores the weights as F16 (round them first with `VideoAutoencoder.roundToHalfPrecision` so the
    /// model in memory is the one written).
    public static func save(_ model: VideoAutoencoder, anomaly: AnomalyStatistics?, training: VideoTrainingSummary?,
                            to folder: String, half: Bool = false) throws {
        try createFolder(folder)
        try writeWeights(model.parameters, to: folder + "/" + weightsFile, half: half)
        if let anomaly { try writeJSON(anomaly, to: folder + "/" + anomalyFile) }
        try writeJSON(ConfigFile(video: model.config, weights: weightsFile, training: training), to: folder + "/" + configFile)
    }

    /// Loads a model folder (and its anomaly statistics when present). Throws `CaptionError` naming the file.
    public static func load(_ folder: String) throws -> (model: VideoAutoencoder, anomaly: AnomalyStatistics?) {
        let configPath = folder + "/" + configFile
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw CaptionError(file: folder, "no such model folder", kind: .notFound)
        }
        let config: ConfigFile = try readJSON(configPath)
        let model: VideoAutoencoder
        do { model = try VideoAutoencoder(config: config.video) } catch let error as CaptionError {
            throw CaptionError(file: configPath, error.problem, kind: error.kind)
        }
        let weightsPath = folder + "/" + config.weights
        let file = try SafeTensorsFile(path: weightsPath)
        try readWeights(file, into: model.parameters)
        let anomalyPath = folder + "/" + anomalyFile
        let anomaly: AnomalyStatistics? = FileManager.default.fileExists(atPath: anomalyPath) ? try readJSON(anomalyPath) : nil
        return (model, anomaly)
    }

    /// Every non-empty parameter as an F32 (or, with `half`, F16) tensor under its name.
    static func writeWeights(_ p: Parameters, to path: String, half: Bool = false,
                             extra: (inout SafeTensorsWriter) -> Void = { _ in }) throws {
        var writer = SafeTensorsWriter()
        for param in p.layout.params where param.count > 0 {
            if half { writer.addHalf(param.name, p.tensor(param)) } else { writer.add(param.name, p.tensor(param)) }
        }
        extra(&writer)
        do { try writer.write(to: path) } catch { throw CaptionError(file: path, "cannot write weights: \(error)") }
    }

    /// Fills every non-empty parameter from `file`, checking names and shapes; tensors the model does not have
    /// are an error unless their name starts with one of `ignoring`.
    static func readWeights(_ file: SafeTensorsFile, into p: Parameters, ignoring: [String] = []) throws {
        var expected = Set<String>()
        for param in p.layout.params where param.count > 0 {
            expected.insert(param.name)
            guard let info = file.info(param.name) else {
                throw CaptionError(file: file.path, "no tensor \"\(param.name)\" (the weights do not match config.json)")
            }
            guard info.shape == param.shape else {
                throw CaptionError(file: file.path, "tensor \"\(param.name)\" has shape \(info.shape), config.json needs \(param.shape)")
            }
            guard info.dtype == .F32 || info.dtype == .F16 || info.dtype == .BF16 else {
                throw CaptionError(file: file.path, "tensor \"\(param.name)\" is \(info.dtype.rawValue), not a float type")
            }
            p.set(param, try file.tensor(param.name))
        }
        if let stray = file.names.first(where: { name in !expected.contains(name) && !ignoring.contains { name.hasPrefix($0) } }) {
            throw CaptionError(file: file.path, "unexpected tensor \"\(stray)\" (the weights do not match config.json)")
        }
    }

    static func createFolder(_ folder: String) throws {
        do { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) } catch {
            throw CaptionError(file: folder, "cannot create folder")
        }
    }

    static func writeJSON<T: Encodable>(_ value: T, to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        do {
            let data = try encoder.encode(value)
            try (data + Data("\n".utf8)).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw CaptionError(file: path, "cannot write file")
        }
    }

    static func readJSON<T: Decodable>(_ path: String) throws -> T {
        guard let data = FileManager.default.contents(atPath: path) else {
            let exists = FileManager.default.fileExists(atPath: path)
            throw CaptionError(file: path, exists ? "cannot read file" : "no such file", kind: exists ? .io : .notFound)
        }
        do { return try JSONDecoder().decode(T.self, from: data) } catch let DecodingError.dataCorrupted(context) {
            throw CaptionError(file: path, context.codingPath.isEmpty ? "not valid JSON"
                             : "invalid value for \"\(codingPath(context.codingPath))\"")
        } catch let DecodingError.keyNotFound(key, context) {
            throw CaptionError(file: path, "missing \"\(codingPath(context.codingPath + [key]))\"")
        } catch let DecodingError.typeMismatch(_, context) {
            throw CaptionError(file: path, "\"\(codingPath(context.codingPath))\" has the wrong type")
        } catch let DecodingError.valueNotFound(_, context) {
            throw CaptionError(file: path, "\"\(codingPath(context.codingPath))\" is null")
        } catch {
            throw CaptionError(file: path, "cannot parse file")
        }
    }

    private static func codingPath(_ keys: [CodingKey]) -> String {
        keys.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
    }
}
