import ArgumentParser
import CaptionMetrics

/// `caption metrics --refs ANNOTATIONS.json --hyps RESULTS.json`
struct MetricsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "metrics",
        abstract: "Score a COCO results file against a COCO captions annotation file (BLEU-1..4, ROUGE-L, CIDEr-D).",
        discussion: """
            Prints {"BLEU-1":..,"BLEU-2":..,"BLEU-3":..,"BLEU-4":..,"ROUGE-L":..,"CIDEr-D":..,"images":N} with \
            the numbers pycocoevalcap gives (PTB tokenisation included). The images scored are those of the \
            results file; each must be in the annotation file.
            """
    )

    @Option(name: .long, help: "COCO captions annotation file (images + annotations).")
    var refs: String

    @Option(name: .long, help: "COCO results file: [{\"image_id\": ID, \"caption\": \"...\"}].")
    var hyps: String

    func run() throws {
        print(try COCOMetrics.evaluate(annotationFile: refs, resultsFile: hyps).jsonLine())
    }
}
