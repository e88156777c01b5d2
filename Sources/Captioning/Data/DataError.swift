/// A problem with a dataset, vocabulary, annotation or results file: which file, and what is wrong
/// with it (the entry index or image id where there is one). `description` is the CLI contract's
/// one-line `<file>: <problem>` text.
public struct DataError: Error, CustomStringConvertible, Equatable {
    /// The file (or folder) at fault, as the user named it.
    public let file: String
    /// What is wrong, naming the entry: `annotations[12] (id 4431): empty caption`.
    public let problem: String

    public init(file: String, _ problem: String) {
        self.file = file
        self.problem = problem
    }

    public var description: String { "\(file): \(problem)" }
}
