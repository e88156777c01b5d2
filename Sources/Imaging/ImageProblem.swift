import CaptionSupport

/// Why an image could not be read, decoded or written. Not an error itself: `error(_:)` makes the
/// `CaptionError` every Imaging function throws, with the one-line problem text and the kind a caller
/// may react to (a server answers `.unsupported` with 415, `.corrupt` and `.tooLarge` with 422).
public enum ImageProblem: Equatable, Sendable {
    /// The path does not exist.
    case fileNotFound
    /// The path exists but may not be read (or, when writing, written).
    case permissionDenied
    /// The path is a directory.
    case isDirectory
    /// Any other failure of `open`/`read`, with the system's reason.
    case unreadable(String)
    /// Not a regular file (a FIFO, socket or device), where only regular files are read; the string names its kind.
    case notRegularFile(String)
    /// A regular file of `bytes` bytes, over the caller's `limit`.
    case fileTooLarge(bytes: Int, limit: Int)
    /// Zero bytes.
    case emptyFile
    /// Neither JPEG nor PNG magic bytes at the start.
    case unknownFormat
    /// The data ends before the image does (Pillow: "image file is truncated").
    case truncated(ImageFormat, String)
    /// The decoder rejected the data; the string is libjpeg's or libpng's reason.
    case corrupt(ImageFormat, String)
    /// The header declares more pixels than `ImageDecoder.maxPixels` allows.
    case tooLarge(width: Int, height: Int, limit: Int)
    /// A valid file of a kind this decoder does not handle (e.g. a 12-bit JPEG).
    case unsupported(String)
    /// Memory for the pixels could not be allocated.
    case outOfMemory
    /// Writing the output file failed, with the system's reason.
    case writeFailed(String)
    /// The caller passed something unusable (e.g. a 0×0 image to write).
    case invalidArgument(String)

    /// The problem without the file name, e.g. `"not a JPEG or PNG file"`.
    public var problem: String {
        switch self {
        case .fileNotFound: return "no such file"
        case .permissionDenied: return "cannot read file: permission denied"
        case .isDirectory: return "is a directory, not an image file"
        case .unreadable(let why): return "cannot read file: \(why)"
        case .notRegularFile(let kind): return "cannot read file: not a regular file (\(kind))"
        case .fileTooLarge(let bytes, let limit): return "cannot read file: file is \(bytes) bytes, over the limit of \(limit)"
        case .emptyFile: return "file is empty"
        case .unknownFormat: return "not a JPEG or PNG file"
        case .truncated(let format, let why): return "truncated \(format) file: \(why)"
        case .corrupt(.jpeg, let why): return "truncated or corrupt JPEG: \(why)"
        case .corrupt(let format, let why): return "corrupt \(format): \(why)"
        case .tooLarge(let width, let height, let limit):
            return "image is \(width)×\(height) (\(Self.pixelCount(width * height))), "
                + "over the limit of \(Self.pixelCount(limit))"
        case .unsupported(let why): return "unsupported image: \(why)"
        case .outOfMemory: return "out of memory while decoding"
        case .writeFailed(let why): return "cannot write file: \(why)"
        case .invalidArgument(let why): return why
        }
    }

    /// The category a caller may react to. An empty file counts as truncated data; a directory or a FIFO
    /// as something that is not an image file; an unusable argument as bad input (it is reported like one).
    public var kind: CaptionError.Kind {
        switch self {
        case .fileNotFound: return .notFound
        case .permissionDenied, .unreadable, .outOfMemory, .writeFailed: return .io
        case .isDirectory, .notRegularFile, .unknownFormat, .unsupported: return .unsupported
        case .emptyFile, .truncated, .corrupt: return .corrupt
        case .fileTooLarge, .tooLarge: return .tooLarge
        case .invalidArgument: return .input
        }
    }

    /// The error about `path` (or a name such as `"<memory>"` for in-memory data): `"<path>: <problem>"`.
    public func error(_ path: String) -> CaptionError {
        CaptionError(file: path, problem, kind: kind)
    }

    /// "3.6 gigapixels", "100 megapixels", "12.3 megapixels", "5000 pixels".
    static func pixelCount(_ n: Int) -> String {
        func scaled(_ value: Double, _ unit: String) -> String {
            let rounded = (value * 10).rounded() / 10
            let text = rounded == rounded.rounded() ? String(Int(rounded)) : String(rounded)
            return "\(text) \(unit)"
        }
        if n >= 1_000_000_000 { return scaled(Double(n) / 1e9, "gigapixels") }
        if n >= 1_000_000 { return scaled(Double(n) / 1e6, "megapixels") }
        return "\(n) pixels"
    }
}
