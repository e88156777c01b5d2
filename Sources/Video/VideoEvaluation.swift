import CaptionSupport
import Foundation
import TensorCore

/// `caption video eval`'s numbers: the free-running model's mean per-frame losses on reconstruction (frames
/// 1…T) and future prediction (frames T+1…T+K), beside two baselines on the same frames:
///
/// - `copy_last`: every frame predicted as the last observed frame v_T;
/// - `mean_frame`: every frame predicted as the mean of the observed frames v_1…v_T.
///
/// For Bernoulli cross-entropy a baseline's 0/1 pixels would cost infinitely much wherever they are wrong, so
/// each baseline's predictions are clamped to [ε, 1 − ε] with the ε (from a log-spaced grid, 1e-7…0.5) that
/// minimises *its own* loss on the evaluated frames, a choice that can only flatter the baselines. The ε used
/// are reported. Feature models (squared error) need no clamp.
public struct EvaluationReport: Encodable, Equatable {
    /// Mean per-frame losses on one block of frames.
    public struct Comparison: Encodable, Equatable {
        /// nil when the model has no decoder for this block.
        public var model: Double?
        /// The copy-last baseline's mean per-frame loss.
        public var copyLast: Double
        /// The mean-frame baseline's mean per-frame loss.
        public var meanFrame: Double
        enum CodingKeys: String, CodingKey { case model, copyLast = "copy_last", meanFrame = "mean_frame" }
    }

    /// Per frame index, averaged over sequences.
    public struct PerFrame: Encodable, Equatable {
        /// The model's loss at each frame of the block; nil when it has no decoder for the block.
        public var model: [Double]?
        /// The copy-last baseline's loss at each frame of the block.
        public var copyLast: [Double]
        /// The mean-frame baseline's loss at each frame of the block.
        public var meanFrame: [Double]
        enum CodingKeys: String, CodingKey { case model, copyLast = "copy_last", meanFrame = "mean_frame" }
    }

    /// The ε each baseline's predictions were clamped to [ε, 1 − ε] with, for one block.
    public struct Epsilons: Encodable, Equatable {
        /// The copy-last baseline's ε.
        public var copyLast: Double
        /// The mean-frame baseline's ε.
        public var meanFrame: Double
        enum CodingKeys: String, CodingKey { case copyLast = "copy_last", meanFrame = "mean_frame" }
    }

    /// Number of sequences evaluated.
    public var sequences: Int
    /// `bce` or `mse`.
    public var loss: String
    /// Losses on frames 1…T (the baselines are scored there even without a reconstruction decoder).
    public var reconstruction: Comparison
    /// nil when the sequences have no future frames to compare with.
    public var future: Comparison?
    /// Per-frame losses by block, `"reconstruction"` and (with future frames) `"future"`.
    public var perFrame: [String: PerFrame]
    /// The baselines' clamps (BCE only).
    public var baselineEpsilon: [String: Epsilons]?

    enum CodingKeys: String, CodingKey {
        case sequences, loss, reconstruction, future, perFrame = "per_frame", baselineEpsilon = "baseline_epsilon"
    }

    /// Ratio of the model's loss to the better baseline's (lower is better), per block.
    public func improvement(_ c: Comparison?) -> Double? {
        guard let c, let m = c.model else { return nil }
        return 1 - m / min(c.copyLast, c.meanFrame)
    }
}

/// `caption video eval`'s computations: per-frame losses of the free-running model, anomaly scores, and
/// the report against the baselines.
public enum VideoEvaluation {
    /// The free-running model's per-frame losses for each sequence of `batch` (row b of each list is sequence
    /// b; reconstruction frames in natural order). Nil for an absent decoder.
    public static func frameLosses(_ model: VideoAutoencoder, _ batch: FrameBatch) -> (reconstruction: [[Double]]?, future: [[Double]]?) {
        let inference = model.infer(batch)
        let (t, b, d) = (model.config.observedFrames, batch.batchSize, batch.dimension)
        func losses(_ outputs: Tensor?, firstFrame: Int) -> [[Double]]? {
            guard let outputs else { return nil }
            let steps = outputs.shape[0], rows = steps * b
            var rowLoss = [Double](repeating: 0, count: rows)
            batch.frames.withUnsafeBufferPointer { fb in
                outputs.withUnsafeBufferPointer { ob in
                    rowLoss.withUnsafeMutableBufferPointer { rl in
                        let targets = { (r: Int) in UnsafePointer(fb.baseAddress! + (firstFrame * b + r) * d) }
                        switch model.config.loss {
                        case .bce:
                            FrameLoss.bceWithLogits(rows: rows, dimension: d, logits: ob.baseAddress!, targets: targets,
                                                    rowLoss: rl.baseAddress, dLogits: nil, scale: 0)
                        case .mse:
                            FrameLoss.squaredError(rows: rows, dimension: d, predictions: ob.baseAddress!, targets: targets,
                                                   rowLoss: rl.baseAddress, dPrediction: nil, scale: 0)
                        }
                    }
                }
            }
            return (0..<b).map { seq in (0..<steps).map { rowLoss[$0 * b + seq] } }
        }
        let future = batch.frameCount >= t + model.config.futureFrames ? losses(inference.future, firstFrame: t) : nil
        return (losses(inference.reconstruction, firstFrame: 0), future)
    }

    /// Each listed sequence's mean per-frame reconstruction error (the future prediction error for a model
    /// without a reconstruction decoder), free-running: the anomaly score's raw value.
    public static func sequenceErrors(_ model: VideoAutoencoder, _ data: VideoDataset, indices: [Int],
                                      batchSize: Int = 32) -> [Double] {
        var errors: [Double] = []
        let frames = model.config.reconstruction != .none ? model.config.observedFrames : model.config.framesNeeded
        for chunk in stride(from: 0, to: indices.count, by: batchSize) {
            let items = indices[chunk..<min(chunk + batchSize, indices.count)].map { (sequence: $0, start: 0) }
            let (r, f) = frameLosses(model, data.batch(items, frames: frames))
            for seq in (r ?? f ?? []) { errors.append(seq.reduce(0, +) / Double(max(seq.count, 1))) }
        }
        return errors
    }

    /// Evaluates the model and both baselines on the first T (+ K) frames of every sequence.
    /// Throws when a sequence is too short for the model.
    public static func evaluate(_ model: VideoAutoencoder, _ data: VideoDataset, batchSize: Int = 32) throws -> EvaluationReport {
        let config = model.config
        let (t, k, d) = (config.observedFrames, config.futureFrames, data.dimension)
        for i in 0..<data.count where data.length(i) < config.framesNeeded {
            throw CaptionError(file: data.name(i), "has \(data.length(i)) frames, the model needs \(config.framesNeeded)")
        }
        let withFuture = (0..<data.count).allSatisfy { data.length($0) >= t + k }
        let frames = withFuture ? t + k : t
        var modelSums: [String: [Double]] = [:]
        var baselines = BaselineAccumulator(observed: t, future: withFuture ? k : 0, dimension: d, loss: config.loss)
        for chunk in stride(from: 0, to: data.count, by: batchSize) {
            let batch = data.batch(chunk..<min(chunk + batchSize, data.count), frames: frames)
            let (r, f) = frameLosses(model, batch)
            for (name, losses) in [("reconstruction", r), ("future", f)] {
                guard let losses else { continue }
                var sums = modelSums[name] ?? [Double](repeating: 0, count: losses[0].count)
                for seq in losses { for (i, v) in seq.enumerated() { sums[i] += v } }
                modelSums[name] = sums
            }
            baselines.add(batch)
        }
        let n = Double(data.count)
        let modelPerFrame = modelSums.mapValues { $0.map { $0 / n } }
        let (basePerFrame, epsilons) = baselines.finish(sequences: data.count)
        func mean(_ a: [Double]) -> Double { a.reduce(0, +) / Double(max(a.count, 1)) }
        func comparison(_ name: String) -> EvaluationReport.Comparison? {
            guard let base = basePerFrame[name] else { return nil }
            return .init(model: modelPerFrame[name].map(mean), copyLast: mean(base.copyLast), meanFrame: mean(base.meanFrame))
        }
        var perFrame: [String: EvaluationReport.PerFrame] = [:]
        for (name, base) in basePerFrame {
            perFrame[name] = .init(model: modelPerFrame[name], copyLast: base.copyLast, meanFrame: base.meanFrame)
        }
        return EvaluationReport(sequences: data.count, loss: config.loss.rawValue, reconstruction: comparison("reconstruction")!,
                                future: comparison("future"), perFrame: perFrame,
                                baselineEpsilon: config.loss == .bce ? epsilons : nil)
    }
}

/// Accumulates the copy-last and mean-frame baselines' losses over batches.
///
/// For pixels (BCE) every prediction is a byte value (copy-last) or a sum of T byte values (mean frame), so
/// the loss of any clamp ε follows from per-frame histograms over those values: (count, Σ target) per bin.
/// That makes choosing each baseline's best ε exact and cheap.
struct BaselineAccumulator {
    let observed: Int
    let future: Int
    let dimension: Int
    let loss: VideoModelConfig.Loss
    /// BCE: `histogram[baseline][frame][bin] = (count, Σ targets)`; frames 0..<T then T..<T+K.
    var counts: [[[Double]]]
    var targetSums: [[[Double]]]
    /// MSE: summed squared errors per baseline and frame.
    var squared: [[Double]]

    init(observed: Int, future: Int, dimension: Int, loss: VideoModelConfig.Loss) {
        self.observed = observed
        self.future = future
        self.dimension = dimension
        self.loss = loss
        let frames = observed + future
        let bins = [256, 255 * observed + 1]
        counts = loss == .bce ? bins.map { [[Double]](repeating: [Double](repeating: 0, count: $0), count: frames) } : []
        targetSums = counts
        squared = [[Double]](repeating: [Double](repeating: 0, count: frames), count: 2)
    }

    mutating func add(_ batch: FrameBatch) {
        let (b, d, t) = (batch.batchSize, dimension, observed)
        let frames = observed + future
        batch.frames.withUnsafeBufferPointer { fb in
            let row = { (frame: Int, seq: Int) in fb.baseAddress! + (frame * b + seq) * d }
            for seq in 0..<b {
                switch loss {
                case .bce:
                    var last = [Int](repeating: 0, count: d), sum = [Int](repeating: 0, count: d)
                    for f in 0..<t {
                        let x = row(f, seq)
                        for j in 0..<d { let v = Int((x[j] * 255).rounded()); sum[j] += v; if f == t - 1 { last[j] = v } }
                    }
                    for f in 0..<frames {
                        let x = row(f, seq)
                        for j in 0..<d {
                            counts[0][f][last[j]] += 1; targetSums[0][f][last[j]] += Double(x[j])
                            counts[1][f][sum[j]] += 1; targetSums[1][f][sum[j]] += Double(x[j])
                        }
                    }
                case .mse:
                    var mean = [Double](repeating: 0, count: d)
                    for f in 0..<t { let x = row(f, seq); for j in 0..<d { mean[j] += Double(x[j]) / Double(t) } }
                    let last = row(t - 1, seq)
                    for f in 0..<frames {
                        let x = row(f, seq)
                        for j in 0..<d {
                            let a = Double(x[j] - last[j]), m = Double(x[j]) - mean[j]
                            squared[0][f] += a * a; squared[1][f] += m * m
                        }
                    }
                }
            }
        }
    }

    /// Per block ("reconstruction", "future"): per-frame mean losses of both baselines, and the ε chosen.
    func finish(sequences: Int) -> ([String: (copyLast: [Double], meanFrame: [Double])], [String: EvaluationReport.Epsilons]) {
        let n = Double(sequences)
        var blocks = [("reconstruction", 0..<observed)]
        if future > 0 { blocks.append(("future", observed..<(observed + future))) }
        var perFrame: [String: (copyLast: [Double], meanFrame: [Double])] = [:]
        var epsilons: [String: EvaluationReport.Epsilons] = [:]
        for (name, range) in blocks {
            if loss == .mse {
                perFrame[name] = (range.map { squared[0][$0] / n }, range.map { squared[1][$0] / n })
                continue
            }
            var chosen: [Double] = [], losses: [[Double]] = []
            for baseline in 0..<2 {
                let scale = baseline == 0 ? 255.0 : 255.0 * Double(observed)
                func frameLoss(_ f: Int, _ eps: Double) -> Double {
                    var total = 0.0
                    for bin in 0..<counts[baseline][f].count where counts[baseline][f][bin] > 0 {
                        let q = min(max(Double(bin) / scale, eps), 1 - eps)
                        let s = targetSums[baseline][f][bin], c = counts[baseline][f][bin]
                        total -= s * log(q) + (c - s) * log(1 - q)
                    }
                    return total / n
                }
                let grid = (0...66).map { pow(10.0, -7.0 + Double($0) * 0.1) }.filter { $0 <= 0.5 }
                let best = grid.min { a, b in
                    range.reduce(0.0) { $0 + frameLoss($1, a) } < range.reduce(0.0) { $0 + frameLoss($1, b) }
                }!
                chosen.append(best)
                losses.append(range.map { frameLoss($0, best) })
            }
            perFrame[name] = (losses[0], losses[1])
            epsilons[name] = .init(copyLast: chosen[0], meanFrame: chosen[1])
        }
        return (perFrame, epsilons)
    }
}
