import ArgumentParser
import CaptionSupport
import Foundation

/// The `caption` tool. Every subcommand is a thin layer over the libraries: it parses arguments,
/// calls into TensorCore / Imaging / Vision / Captioning / Video, and prints results to stdout.
@main
struct CaptionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "caption",
        abstract: "Describe images in words (Show, Attend and Tell).",
        discussion: "See README.md for the full guide; results go to stdout, progress and logs to stderr.",
        subcommands: allSubcommands,
        defaultSubcommand: DescribeCommand.self
    )

    /// Parses, runs, and maps every failure onto the contract: a one-line
    /// `caption: error: <file>: <problem>` on stderr and exit status 1 (help and --version exit 0).
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let error as CaptionFailure {
            // A command already reported its per-item errors; it only sets the exit status.
            Foundation.exit(error.status)
        } catch let error as CaptionError where error.kind == .usage {
            // A library's bad-option error reads like ArgumentParser's own validation errors.
            Log.error("\(error) (see 'caption --help')")
            Foundation.exit(1)
        } catch {
            let code = exitCode(for: error)
            if code == .success || error is CleanExit {
                exit(withError: error)
            }
            // One line: ArgumentParser's message without its "Error: " prefix and usage block.
            let message = message(for: error)
            let body = message.hasPrefix("Error: ") ? String(message.dropFirst(7)) : message
            Log.error(code == .validationFailure ? body + " (see 'caption --help')" : body)
            Foundation.exit(1)
        }
    }
}
