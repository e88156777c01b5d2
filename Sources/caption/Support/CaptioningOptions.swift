import ArgumentParser
import Captioning
import CaptionSupport

/// `--format text|json` of `caption IMAGE...`, `caption score` and `caption video encode`.
enum ResultFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
}

/// `--quiet`, shared by every command that reports progress or information on stderr.
struct LogOptions: ParsableArguments {
    @Flag(name: .long, help: "No progress or informational lines on stderr (errors still print).")
    var quiet = false

    /// Makes `Log` (and the progress display) follow `--quiet`.
    func apply() { Log.quiet = quiet }
}

/// The model options of the commands that load a captioning model.
struct ModelOptions: ParsableArguments {
    @Option(name: .long, help: "Model folder (default: the shipped model, or $CAPTION_WEIGHTS).")
    var weights: String?

    @OptionGroup var log: LogOptions

    /// The model folder's captioner (inference weights only); a load failure is one `<file>: <problem>` line.
    func loadCaptioner() throws -> Captioner {
        log.apply()
        let folder = try WeightsLocation.resolve(weights)
        return try Captioner(modelFolder: folder)
    }
}

/// Beam size and caption length: the search options every captioning command takes (`caption eval` too).
struct BeamOptions: ParsableArguments {
    @Option(name: .long, help: "Beam size (1 = greedy).")
    var beam = 3

    @Option(name: .long, help: "Most words per caption (default: the model's max_length).")
    var maxLength: Int?

    func validate() throws {
        guard beam >= 1 else { throw ValidationError("--beam must be at least 1, got \(beam)") }
        if let maxLength, maxLength < 1 { throw ValidationError("--max-length must be at least 1, got \(maxLength)") }
    }
}

/// The beam search options of the commands that generate captions one request at a time: `BeamOptions` and the
/// length penalty.
struct SearchOptions: ParsableArguments {
    @OptionGroup var limits: BeamOptions

    @Option(name: .long, help: "Length penalty α for the final choice among finished captions (score / length^α; 0 = the tutorial's plain score).")
    var lengthPenalty: Float = 0

    var beam: Int { limits.beam }
    var maxLength: Int? { limits.maxLength }

    func validate() throws {
        guard lengthPenalty.isFinite else { throw ValidationError("--length-penalty must be a number") }
    }
}
