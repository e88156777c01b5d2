import ArgumentParser
import Captioning
import CaptionData
import CaptionMetrics
import CaptionSupport
import CaptionTraining
import SyntheticWorld
import BatchCaptioning
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

    @Option(name: .long, help: "Model folder (default: the shipped model).")
    var weights: String?

    @Option(name: .long, help: "Beam size (1 = greedy).")
    var beam = 3

    @Option(name: .long, help: "Most words per caption (default: the model's max_length).")
    var maxLength: Int?

    @Option(name: .long, help: "Write the COCO results file here.")
    var out: String?

    @Option(name: .long, help: "Images captioned together.")
    var batchSize = 16

    @Flag(name: .long, help: "No progress on stderr.")
    var quiet = false

    func validate() throws {
        guard beam >= 1 else { throw ValidationError("--beam must be at least 1") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1") }
        if let maxLength, maxLength < 1 { throw ValidationError("--max-length must be at least 1") }
    }

    func run() throws {
        Log.quiet = quiet
        let modelPath = try WeightsLocation.resolve(weights)
        let captioner: Captioner
        let dataset: CaptionDataset
        do {
            captioner = try Captioner(modelFolder: modelPath)
            dataset = try CaptionDataset.load(folder: data, split: split)
        } catch { throw CaptionError("\(error)") }
        let started = Date()
        let result: EvaluationResult
        do {
            result = try CaptionEvaluation.run(captioner: captioner, dataset: dataset, beam: beam, maxLength: maxLength,
                                               batchSize: batchSize) { done, total in
                Progress.line("eval \(self.split): \(done)/\(total) images", final: done == total)
            }
        } catch { throw CaptionError("\(error)") }
        if let out {
            do { try COCOResultsFile.write(result.captions, to: out) } catch { throw CaptionError("\(error)") }
        }
        let seconds = Date().timeIntervalSince(started)
        var summary = String(format: "eval: %d images in %.1f s (%.1f images/s), beam %d", result.scores.images, seconds,
                             Double(result.scores.images) / max(seconds, 1e-9), beam)
        if let p = result.pointing {
            summary += String(format: "; pointing: %d of %d colour/shape words (%d naming nothing in the scene)",
                              p.hits, p.words, p.unmatched)
        }
        Log.info(summary)
        print(result.jsonLine)
    }
}

/// Progress on stderr: one redrawn line on a terminal, plain lines at most every few seconds otherwise.
enum Progress {
    nonisolated(unsafe) private static var lastPlain = Date.distantPast

    static func line(_ text: String, final: Bool = false) {
        guard !Log.quiet else { return }
        if Log.stderrIsTerminal {
            FileHandle.standardError.write(Data("\r\u{1B}[K\(text)\(final ? "\n" : "")".utf8))
        } else if final || Date().timeIntervalSince(lastPlain) >= 5 {
            lastPlain = Date()
            FileHandle.standardError.write(Data("\(text)\n".utf8))
        }
    }

    /// "m:ss", or "h:mm:ss" from an hour on (ETAs).
    static func clock(_ seconds: Double) -> String {
        let s = seconds.isFinite ? Int(seconds.rounded()) : 0
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }
}
