import ArgumentParser
import Captioning
import CaptionData
import CaptionMetrics
import CaptionSupport
import CaptionTraining
import SyntheticWorld
import BatchCaptioning

/// `--format text|json` of `caption IMAGE...` and `caption score`.
enum ResultFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
}

/// The model options of the commands that load a captioning model.
struct ModelOptions: ParsableArguments {
    @Option(name: .long, help: "Model folder (default: the shipped model, or $CAPTION_WEIGHTS).")
    var weights: String?

    @Flag(name: .long, help: "No informational output on stderr (errors still print).")
    var quiet = false

    /// The model folder's captioner (inference weights only); a load failure is one `<file>: <problem>` line.
    func loadCaptioner() throws -> Captioner {
        Log.quiet = quiet
        let folder = try WeightsLocation.resolve(weights)
        let captioner: Captioner
        do { captioner = try Captioner(modelFolder: folder) } catch { throw CaptionError("\(error)") }
        return captioner
    }
}

/// The beam search options of the commands that generate captions.
struct SearchOptions: ParsableArguments {
    @Option(name: .long, help: "Beam size (1 = greedy).")
    var beam = 3

    @Option(name: .long, help: "Most words per caption (default: the model's max_length).")
    var maxLength: Int?

    @Option(name: .long, help: "Length penalty α for the final choice among finished captions (score / length^α; 0 = the tutorial's plain score).")
    var lengthPenalty: Float = 0

    func validate() throws {
        guard beam >= 1 else { throw ValidationError("--beam must be at least 1, got \(beam)") }
        if let maxLength, maxLength < 1 { throw ValidationError("--max-length must be at least 1, got \(maxLength)") }
        guard lengthPenalty.isFinite else { throw ValidationError("--length-penalty must be a number") }
    }
}
