/// A user-facing failure of the video pipeline: an unreadable sequence, a bad model folder, a missing
/// `ffmpeg`. `description` is one line, `"<file>: <problem>"`, as the CLI contract prints it.
public struct VideoError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file or folder at fault.
    public let file: String
    public let problem: String

    public init(file: String, _ problem: String) {
        self.file = file
        self.problem = problem
    }

    public var description: String { "\(file): \(problem)" }
}
