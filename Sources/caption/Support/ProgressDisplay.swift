import Foundation

/// The CLI's one progress renderer, on stderr. On a terminal, `update` redraws a single line in place (with a
/// bar when the total is known), at most ten times a second; otherwise it prints a plain line at most every
/// `plainInterval` seconds (and whenever forced). `line` prints a permanent line between the updates. Nothing
/// at all under `--quiet` (`Log.quiet`).
final class ProgressDisplay {
    /// Seconds between plain progress lines when stderr is not a terminal; nil for none (the caller logs its own
    /// lines, e.g. `caption video train`'s reports).
    let plainInterval: TimeInterval?
    /// Whether stderr is a terminal (bars are drawn only then).
    let terminal = Log.stderrIsTerminal
    private var lastDraw = Date.distantPast
    private var lastPlain = Date.distantPast
    private var drawn = false

    init(plainInterval: TimeInterval? = 5) { self.plainInterval = plainInterval }

    /// Shows `text` as the current progress; `done` of `total` draws the bar on a terminal. `force` skips the
    /// rate limits (the last update of a stage).
    func update(_ text: String, done: Int? = nil, total: Int? = nil, force: Bool = false) {
        guard !Log.quiet else { return }
        let now = Date()
        if terminal {
            guard force || now.timeIntervalSince(lastDraw) >= 0.1 else { return }
            lastDraw = now
            var shown = text
            if let done, let total {
                let width = 24, filled = min(width, total > 0 ? width * max(0, done) / total : width)
                shown = "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "] " + text
            }
            write("\r\u{1B}[K" + shown)
            drawn = true
        } else if let plainInterval, force || now.timeIntervalSince(lastPlain) >= plainInterval {
            lastPlain = now
            write(text + "\n")
        }
    }

    /// Shows `text` in place of the progress line on a terminal only (a passing state, e.g. "validating…").
    func status(_ text: String) {
        guard !Log.quiet, terminal else { return }
        write("\r\u{1B}[K" + text)
        drawn = true
    }

    /// A permanent line (the progress line, if any, is cleared first and comes back with the next update).
    func line(_ text: String) {
        guard !Log.quiet else { return }
        if drawn { write("\r\u{1B}[K"); drawn = false }
        write(text + "\n")
    }

    /// Ends a redrawn progress line so that what follows starts on its own line.
    func finish() {
        if drawn && !Log.quiet { write("\n") }
        drawn = false
    }

    private func write(_ text: String) { FileHandle.standardError.write(Data(text.utf8)) }

    /// "m:ss", or "h:mm:ss" from an hour on (ETAs).
    static func clock(_ seconds: Double) -> String {
        let s = seconds.isFinite ? Int(seconds.rounded()) : 0
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }
}
