import ArgumentParser
import CaptionData
import CaptionMetrics
import CaptionTraining
import Foundation

/// `caption eval --data DIR [--split test] [--weights DIR] [--beam K] [--out RESULTS.json]`
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Caption a dataset split with real inference and score it (BLEU-1..4, ROUGE-L, CIDEr-D, pointing).",
        discussion: """
            Prints {"BLEU-1":..,"BLEU-2":..,"BLEU-3":..,"BLEU-4":..,"ROUGE-L":..,"CIDEr-D":..,"images":N} \
            (pycocoevalcap's numbers, PTB tokenisation included). For synthetic sets (every image has "objects") \
            it adds "pointing_accuracy": the share of generated colour and shape words whose attention peak lies \
            in the box of an object the word names (see README, "Pointing accuracy"). --out writes the COCO \
            results file [{"image_id": ID, "caption": "..."}].
            """
    )

    @Option(name: .long, help: "COCO-style dataset folder.")
    var data: String

    @Option(name: .long, help: "Split to caption.")
    var split = "test"

    @Option(name: .long, help: "Write the COCO results file here.")
    var out: String?

    @Option(name: .long, help: "Images captioned together.")
    var batchSize = 16

    @OptionGroup var model: ModelOptions
    @OptionGroup var search: BeamOptions

    func validate() throws {
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1, got \(batchSize)") }
    }

    func run() throws {
        let captioner = try model.loadCaptioner()
        let dataset = try CaptionDataset.load(folder: data, split: split)
        let started = Date()
        let result: EvaluationResult
        let display = ProgressDisplay()
        do {
            result = try CaptionEvaluation.run(captioner: captioner, dataset: dataset, beam: search.beam, maxLength: search.maxLength,
                                               batchSize: batchSize) { done, total in
                display.update("eval \(self.split): \(done)/\(total) images", done: done, total: total, force: done == total)
            }
        } catch {
            display.finish()
            throw error
        }
        display.finish()
        if let out {
            try COCOResultsFile.write(result.captions, to: out)
        }
        let seconds = Date().timeIntervalSince(started)
        var summary = String(format: "eval: %d images in %.1f s (%.1f images/s), beam %d", result.scores.images, seconds,
                             Double(result.scores.images) / max(seconds, 1e-9), search.beam)
        if let p = result.pointing {
            summary += String(format: "; pointing: %d of %d colour/shape words (%d naming nothing in the scene)",
                              p.hits, p.words, p.unmatched)
        }
        Log.info(summary)
        print(result.jsonLine)
    }
}
