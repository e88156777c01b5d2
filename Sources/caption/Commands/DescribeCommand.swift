import ArgumentParser
import CaptionData
import Foundation

/// `caption IMAGE... [--weights DIR] [--beam K] [--max-length N] [--format text|json]` (also `caption describe`).
struct DescribeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "describe",
        abstract: "Caption images (the default command: `caption IMAGE...` is `caption describe IMAGE...`).",
        discussion: """
            Prints one line per image: `PATH<TAB>caption` (text) or a JSON object \
            {"image": PATH, "caption": "...", "tokens": [...], "log_prob": -3.21} (json; log_prob is the beam \
            search's score, the natural-log probability of the words and <end>). Beam search as in the \
            tutorial: cumulative log-probabilities, no length normalisation unless --length-penalty is given; \
            --beam 1 is greedy. An image that cannot be read gets a `caption: error: PATH: problem` line on \
            stderr and the others go on; the exit status is 1 if any failed.
            """
    )

    @Argument(help: "Image files (JPEG or PNG).")
    var images: [String]

    @OptionGroup var model: ModelOptions
    @OptionGroup var search: SearchOptions

    @Option(name: .long, help: "Output format: text or json.")
    var format: ResultFormat = .text

    func validate() throws {
        guard !images.isEmpty else { throw ValidationError("no image given") }
    }

    func run() throws {
        let captioner = try model.loadCaptioner()
        var failed = 0
        for path in images {
            do {
                let r = try captioner.caption(imagePath: path, beam: search.beam, maxLength: search.maxLength,
                                              lengthPenalty: search.lengthPenalty)
                print(format == .json ? r.jsonLine(image: path) : "\(path)\t\(r.caption)")
                fflush(stdout)  // each line as soon as its image is done
                if !r.finished { Log.info("\(path): no <end> within \(search.maxLength ?? captioner.config.maxLength) words; caption cut") }
            } catch {
                Log.error("\(error)")  // CaptionError: "<image>: <problem>"
                failed += 1
            }
        }
        if failed > 0 { throw CaptionFailure() }
    }
}
