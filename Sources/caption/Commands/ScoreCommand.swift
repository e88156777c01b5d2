import ArgumentParser
import Foundation

/// `caption score IMAGE --caption "TEXT" [--weights DIR] [--format text|json]`
struct ScoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "score",
        abstract: "Teacher-forced log-probability of a caption for an image, total and per token.",
        discussion: """
            The caption is tokenised as in training (lower-cased, split on anything but letters and digits) and \
            scored from <start> to <end>: log p(w_1 … w_n <end> | image), natural log. Words missing from the \
            vocabulary are scored as <unk> (and named on stderr). text: `PATH<TAB>log_prob<TAB>word:lp … <end>:lp`; \
            json: {"image":..., "caption":..., "log_prob": -7.1, "token_log_probs": [...], "tokens": [...]}.
            """
    )

    @Argument(help: "Image file (JPEG or PNG).")
    var image: String

    @Option(name: .long, help: "The caption to score.")
    var caption: String

    @OptionGroup var model: ModelOptions

    @Option(name: .long, help: "Output format: text or json.")
    var format: ResultFormat = .text

    func run() throws {
        let captioner = try model.loadCaptioner()
        let s = try captioner.score(imagePath: image, caption: caption)
        if !s.unknownWords.isEmpty {
            Log.info("\(image): not in the vocabulary, scored as <unk>: \(s.unknownWords.joined(separator: ", "))")
        }
        if format == .json {
            print(s.jsonLine(image: image, caption: caption))
        } else {
            let perToken = zip(s.words + ["<end>"], s.tokenLogProbs).map { "\($0):\($1)" }.joined(separator: " ")
            print("\(image)\t\(s.logProb)\t\(perToken)")
        }
    }
}
