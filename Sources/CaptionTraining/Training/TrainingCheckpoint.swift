import Foundation
import NN
import TensorCore
import CaptionSupport
import CaptionData
import CaptionMetrics
import SyntheticWorld
import Captioning

/// Where a run stands: enough, with the weights and the optimiser moments, to continue it exactly.
struct TrainingState: Codable, Equatable {
    /// The epoch to continue in and the next batch of it.
    var epoch = 0
    var batchInEpoch = 0
    /// Optimiser steps taken.
    var step = 0
    /// Multiplier of both learning rates (LR decay on plateau).
    var lrScale: Float = 1
    var bestBLEU4: Double?
    var bestStep: Int?
    var validationsSinceImprovement = 0
    /// Step of the last validation (so the end of a run does not validate the same weights twice).
    var lastValidationStep: Int?
    /// Early stopping fired.
    var stopped = false
    /// Length of the training log at this point.
    var logLength: UInt64 = 0
    /// Training wall time so far (steps only), for throughput reports.
    var trainingSeconds: Double = 0
    /// Adam step counts.
    var decoderAdamStep = 0
    var encoderAdamStep = 0
}

/// A training checkpoint: one safetensors file, written atomically (temporary file, fsync, rename), so a kill at any
/// moment leaves the previous checkpoint or the new one, never a mix.
///
/// Tensors: `decoder` and `encoder` (the flat parameter buffers, BatchNorm statistics included), `adam.decoder.m`,
/// `adam.decoder.v` and, for a fine-tuned encoder, `adam.encoder.m`, `adam.encoder.v`. Metadata: `format`,
/// `options` (TrainingOptions JSON), `state` (TrainingState JSON), `config` (the model's config.json) and `vocab`
/// (its vocab.json).
enum TrainingCheckpoint {
    static let format = "caption-training-checkpoint-1"

    static func write(to path: String, model: TrainableModel, options: TrainingOptions, state: TrainingState,
                      decoderAdam: Adam, encoderAdam: Adam?) throws {
        func flat(_ p: UnsafeMutablePointer<Float>, _ n: Int) -> Tensor {
            Tensor(shape: [n], storage: Array(UnsafeBufferPointer(start: p, count: n)))
        }
        var w = SafeTensorsWriter()
        let dp = model.decoderParameters, ep = model.encoder.parameters
        w.add("decoder", flat(dp.values, dp.count))
        w.add("encoder", flat(ep.values, ep.count))
        w.add("adam.decoder.m", Tensor(shape: [dp.count], storage: decoderAdam.m))
        w.add("adam.decoder.v", Tensor(shape: [dp.count], storage: decoderAdam.v))
        if let encoderAdam {
            w.add("adam.encoder.m", Tensor(shape: [ep.count], storage: encoderAdam.m))
            w.add("adam.encoder.v", Tensor(shape: [ep.count], storage: encoderAdam.v))
        }
        do {
            let config = try JSONSerialization.data(withJSONObject: model.configJSON, options: [.sortedKeys])
            w.metadata = [
                "format": format,
                "options": try encodeAgainstDefaults(options, defaults: TrainingOptions()),
                "state": try encodeAgainstDefaults(state, defaults: TrainingState()),
                "config": String(decoding: config, as: UTF8.self),
                "vocab": String(decoding: model.vocabulary.jsonData(), as: UTF8.self),
            ]
            try w.write(to: path)
        } catch {
            throw CaptionError.wrapping(error, file: path)
        }
    }

    /// What a checkpoint restores.
    struct Contents {
        var model: TrainableModel
        var options: TrainingOptions
        var state: TrainingState
        var decoderMoments: (m: [Float], v: [Float])
        var encoderMoments: (m: [Float], v: [Float])?
    }

    static func read(_ path: String) throws -> Contents {
        guard FileManager.default.fileExists(atPath: path) else {
            throw CaptionError(file: path, "no checkpoint to resume from (train without --resume first)")
        }
        let file: SafeTensorsFile
        do { file = try SafeTensorsFile(path: path) } catch { throw CaptionError.wrapping(error, file: path) }
        func bad(_ s: String) -> CaptionError { CaptionError(file: path, s) }
        let meta = file.metadata
        guard meta["format"] == format else { throw bad("not a training checkpoint (format \(meta["format"] ?? "missing"))") }
        guard let optionsText = meta["options"], let stateText = meta["state"], let configText = meta["config"],
              let vocabText = meta["vocab"] else { throw bad("checkpoint metadata incomplete") }
        let options: TrainingOptions, state: TrainingState
        do {
            options = try decodeOverDefaults(optionsText, defaults: TrainingOptions())
            state = try decodeOverDefaults(stateText, defaults: TrainingState())
        } catch { throw bad("unreadable checkpoint state: \(error)") }
        guard let config = (try? JSONSerialization.jsonObject(with: Data(configText.utf8))) as? [String: Any],
              let wordMap = (try? JSONSerialization.jsonObject(with: Data(vocabText.utf8))) as? [String: Int] else {
            throw bad("unreadable model configuration in the checkpoint")
        }
        let vocabulary = try Vocabulary(wordMap: wordMap, file: path)
        let model = try TrainableModel.rebuild(configJSON: config, vocabulary: vocabulary, file: path)

        func load(_ name: String, count: Int) throws -> [Float] {
            guard let info = file.info(name) else { throw bad("missing tensor \(name)") }
            guard info.shape == [count] else { throw bad("tensor \(name) has shape \(info.shape), expected [\(count)]") }
            do { return try file.tensor(name).storage } catch { throw CaptionError.wrapping(error, file: path) }
        }
        let dp = model.decoderParameters, ep = model.encoder.parameters
        let decoderValues = try load("decoder", count: dp.count)
        let encoderValues = try load("encoder", count: ep.count)
        decoderValues.withUnsafeBufferPointer { dp.values.update(from: $0.baseAddress!, count: dp.count) }
        encoderValues.withUnsafeBufferPointer { ep.values.update(from: $0.baseAddress!, count: ep.count) }
        model.encoder.invalidateInferenceWeights()
        let decoderMoments = (try load("adam.decoder.m", count: dp.count), try load("adam.decoder.v", count: dp.count))
        var encoderMoments: (m: [Float], v: [Float])?
        if options.fineTuneEncoder {
            encoderMoments = (try load("adam.encoder.m", count: ep.count), try load("adam.encoder.v", count: ep.count))
        }
        return Contents(model: model, options: options, state: state, decoderMoments: decoderMoments,
                        encoderMoments: encoderMoments)
    }

    /// Decodes `text` over the JSON of `defaults`, so that a checkpoint written before a field existed reads with the
    /// field's default.
    static func decodeOverDefaults<T: Codable>(_ text: String, defaults: T) throws -> T {
        let base = try JSONSerialization.jsonObject(with: try JSONEncoder().encode(defaults)) as? [String: Any] ?? [:]
        guard let stored = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            throw CaptionError(file: "checkpoint", "not a JSON object")
        }
        let merged = base.merging(stored) { _, new in new }
        return try JSONDecoder().decode(T.self, from: try JSONSerialization.data(withJSONObject: merged))
    }

    /// `value` as JSON text with an explicit null for every field that is nil here but set in `defaults` (the
    /// synthesized encoder omits nil fields, which `decodeOverDefaults` would otherwise read as the default).
    static func encodeAgainstDefaults<T: Codable>(_ value: T, defaults: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var object = try JSONSerialization.jsonObject(with: try encoder.encode(value)) as? [String: Any] ?? [:]
        let base = try JSONSerialization.jsonObject(with: try encoder.encode(defaults)) as? [String: Any] ?? [:]
        for key in base.keys where object[key] == nil { object[key] = NSNull() }
        return String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
    }
}
