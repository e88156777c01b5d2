/// The one error type of the package: which file (or folder, or request) is at fault, and what is wrong with
/// it, naming the entry where there is one. `description` is the CLI contract's one-line `<file>: <problem>`.
public struct CaptionError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file (or folder) at fault, as the user named it.
    public let file: String
    /// What is wrong, naming the entry: `annotations[12] (id 4431): empty caption`.
    public let problem: String

    /// An error about `file`: `problem` says what is wrong, without the file name.
    public init(file: String, _ problem: String) {
        self.file = file
        self.problem = problem
    }

    /// `<file>: <problem>`.
    public var description: String { "\(file): \(problem)" }
}
