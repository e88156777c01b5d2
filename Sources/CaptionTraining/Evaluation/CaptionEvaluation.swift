import Foundation
import Imaging
import TensorCore
import Vision
import CaptionSupport
import CaptionData
import CaptionMetrics
import SyntheticWorld
import Captioning

/// The outcome of `caption eval`.
public struct EvaluationResult: Sendable {
    /// BLEU-1…4, ROUGE-L and CIDEr-D of the generated captions against the references.
    public var scores: MetricScores
    /// The generated caption of every image (the COCO results file).
    public var captions: [ImageID: String]
    /// Pointing accuracy, for splits whose images all carry `objects` (synthetic sets); nil otherwise.
    public var pointing: PointingAccuracy?

    /// `{"BLEU-1":..,"BLEU-2":..,"BLEU-3":..,"BLEU-4":..,"ROUGE-L":..,"CIDEr-D":..,"images":N}`, plus
    /// `"pointing_accuracy"` for synthetic sets.
    public var jsonLine: String {
        scores.jsonLine(extra: pointing.map { [(name: "pointing_accuracy", value: $0.accuracy)] } ?? [])
    }
}

/// Captions a split with real inference (beam search, no teacher forcing) and scores it.
public enum CaptionEvaluation {
    /// Decodes the images on a background thread one batch ahead of the model; `progress(done, total)` after each
    /// batch. Errors (an unreadable image) name the file and the image id.
    public static func run(captioner: Captioner, dataset: CaptionDataset, beam: Int = 3, maxLength: Int? = nil,
                           batchSize: Int = 16, progress: (Int, Int) -> Void = { _, _ in }) throws -> EvaluationResult {
        let images = dataset.images
        guard !images.isEmpty else { throw CaptionError(file: dataset.source, "no images in split \"\(dataset.split)\"") }
        let synthetic = images.allSatisfy { $0.objects != nil }
        let decoder = captioner.extractor.decoder
        let chunks = stride(from: 0, to: images.count, by: batchSize).map { Array($0..<min($0 + batchSize, images.count)) }
        let pipeline = Pipeline(count: chunks.count) { k -> [RGBImage] in
            try chunks[k].map { i in
                do { return try decoder.decode(path: images[i].path) } catch {
                    let error = CaptionError.wrapping(error, file: images[i].path)
                    throw CaptionError(file: images[i].path, "\(error.problem) (image \(images[i].id) of \(dataset.source))",
                                       kind: error.kind)
                }
            }
        }
        defer { pipeline.cancel() }
        var captions: [ImageID: String] = [:]
        var pointing = PointingAccuracy()
        var done = 0
        for chunk in chunks {
            let decoded = try pipeline.next()
            let results = captioner.caption(annotations: captioner.annotations(captioner.preprocess(decoded)), beam: beam,
                                            maxLength: maxLength)
            for (k, i) in chunk.enumerated() {
                let image = images[i], result = results[k]
                captions[image.id] = result.caption
                if synthetic, let objects = image.objects {
                    pointing.add(tokens: result.tokens, alphas: result.alphas, grid: result.grid, objects: objects,
                                 preprocessing: captioner.preprocessing, width: decoded[k].width, height: decoded[k].height)
                }
            }
            done += chunk.count
            progress(done, images.count)
        }
        let scores: MetricScores
        do { scores = try COCOMetrics.evaluate(references: dataset.references, hypotheses: captions) } catch {
            throw CaptionError(file: dataset.source, "\(error)")
        }
        return EvaluationResult(scores: scores, captions: captions, pointing: synthetic ? pointing : nil)
    }
}
