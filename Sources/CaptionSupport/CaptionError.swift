/// The one error type of the package: which file (or folder, or option) is at fault, and what is wrong with it,
/// naming the entry where there is one. `description` is the CLI contract's one-line `<file>: <problem>`.
///
/// Every library module throws this type for bad input: corrupt or unknown images, malformed JSON, wrong-shaped
/// weights, missing files, bad option values. Foundation and system errors that reach a caller unwrapped are
/// bugs; `wrapping(_:file:)` turns them into one line about the file being worked on.
public struct CaptionError: Error, CustomStringConvertible, Equatable, Sendable {
    /// What kind of mistake it is, for callers that react differently (a server answering 404, 415 or 422).
    /// The CLI prints every kind the same way; only `.usage` changes how it is reported.
    public enum Kind: Sendable, Equatable {
        /// A file, folder or body that cannot be used as it is (malformed content, wrong shape, bad entry).
        case input
        /// An option value out of range or inconsistent with another (the CLI reports it as a usage error).
        case usage
        /// No such file or folder.
        case notFound
        /// Not a format this package reads, or a variant of one it does not handle (e.g. a 12-bit JPEG).
        case unsupported
        /// Data of a known format that is truncated or corrupt.
        case corrupt
        /// Over a size or pixel limit.
        case tooLarge
        /// The file cannot be read or written: permission, a full disk, out of memory, a system failure.
        case io
    }

    /// The file (or folder) at fault, as the user named it; empty when the problem is not about one file
    /// (a bad option value, or an error raised before the caller knows which file it concerns).
    public let file: String
    /// What is wrong, naming the entry: `annotations[12] (id 4431): empty caption`.
    public let problem: String
    /// Which kind of bad input, or bad usage.
    public let kind: Kind

    /// An error about `file`: `problem` says what is wrong, without the file name.
    public init(file: String, _ problem: String) {
        self.init(file: file, problem, kind: .input)
    }

    /// An error of the given kind.
    public init(file: String, _ problem: String, kind: Kind) {
        self.file = file
        self.problem = problem
        self.kind = kind
    }

    /// A bad option value: `problem` names the option as the CLI spells it (`--batch-size must be at least 1`).
    public static func usage(_ problem: String) -> CaptionError {
        CaptionError(file: "", problem, kind: .usage)
    }

    /// `<file>: <problem>`, or the problem alone when no file is named.
    public var description: String { file.isEmpty ? problem : "\(file): \(problem)" }

    /// This error, naming `file` when it named none yet (a parser or metric that does not know its file).
    /// A usage error stays about its option.
    public func naming(_ file: String) -> CaptionError {
        self.file.isEmpty && kind != .usage ? CaptionError(file: file, problem, kind: kind) : self
    }

    /// `error` as a `CaptionError`: unchanged when it is one, else one line about `file`.
    public static func wrapping(_ error: Error, file: String) -> CaptionError {
        if let error = error as? CaptionError { return error.naming(file) }
        return CaptionError(file: file, "\(error)")
    }
}
