import CImageIO
import Foundation

/// A container format this package decodes. Always detected from the first bytes, never from a
/// file name (a `.jpg` that holds a PNG decodes as a PNG).
public enum ImageFormat: String, Sendable, CustomStringConvertible, CaseIterable {
    case jpeg
    case png

    /// "JPEG" or "PNG", for messages.
    public var description: String {
        switch self {
        case .jpeg: return "JPEG"
        case .png: return "PNG"
        }
    }

    /// The format announced by the magic bytes at the start of `bytes` (JPEG `FF D8 FF`,
    /// PNG `89 50 4E 47 0D 0A 1A 0A`), or `nil` for anything else, including empty input.
    public static func sniff<Bytes: Collection>(_ bytes: Bytes) -> ImageFormat? where Bytes.Element == UInt8 {
        let head = [UInt8](bytes.prefix(8))
        return head.withUnsafeBufferPointer { ImageFormat(cimageio_sniff($0.baseAddress, $0.count)) }
    }

    /// The format of the file at `path` from its first 8 bytes, or `nil` when it is neither
    /// JPEG nor PNG or cannot be read. Cheap: meant for picking image files out of a folder.
    public static func sniff(path: String) -> ImageFormat? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var head = [UInt8](repeating: 0, count: 8)
        let got = head.withUnsafeMutableBytes { read(fd, $0.baseAddress, 8) }
        guard got > 0 else { return nil }
        return sniff(head.prefix(got))
    }

    init?(_ format: cimageio_format) {
        switch format {
        case CIMAGEIO_FORMAT_JPEG: self = .jpeg
        case CIMAGEIO_FORMAT_PNG: self = .png
        default: return nil
        }
    }
}
