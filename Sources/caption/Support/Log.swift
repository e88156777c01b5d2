import Foundation

/// stderr reporting for the CLI. Results never go through here: they are printed to stdout.
enum Log {
    /// Set by `--quiet`: silences progress and informational lines (errors still print).
    nonisolated(unsafe) static var quiet = false

    /// `caption: error: <message>` on stderr. The message should name the file and the problem.
    static func error(_ message: String) {
        let line = message.split(separator: "\n").joined(separator: " ")
        FileHandle.standardError.write(Data("caption: error: \(line)\n".utf8))
    }

    /// An informational line on stderr, unless `--quiet`.
    static func info(_ message: String) {
        guard !quiet else { return }
        FileHandle.standardError.write(Data("\(message)\n".utf8))
    }

    /// True when stderr is a terminal (progress bars are drawn only then).
    static var stderrIsTerminal: Bool { isatty(2) != 0 }
}

/// Thrown by a command that has already printed its own error lines and only needs to set the
/// exit status (e.g. `caption a.jpg b.jpg` where one of several images failed).
struct CaptionFailure: Error {
    var status: Int32 = 1
}
