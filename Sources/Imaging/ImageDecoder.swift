import CaptionSupport
import CImageIO
import Foundation

/// What an image's header says, read without decoding the pixels.
public struct ImageInfo: Equatable, Sendable {
    /// The container, from the magic bytes: JPEG or PNG.
    public var format: ImageFormat
    /// Size of the decoded image: after the EXIF orientation is applied.
    public var width: Int
    /// Height of the decoded image, after the EXIF orientation.
    public var height: Int
    /// EXIF orientation 1...8 that decoding applies (1 when absent).
    public var orientation: Int
    /// Size as stored in the file (width and height swapped for orientations 5...8).
    public var storedWidth: Int
    /// Height as stored in the file, before the EXIF orientation.
    public var storedHeight: Int
    /// Channels in the file: 1 gray/palette, 2 gray+alpha, 3 RGB/YCbCr, 4 RGBA or CMYK.
    public var components: Int
    /// Bits per sample in the file.
    public var bitDepth: Int
}

/// Decodes JPEG and PNG files into `RGBImage`s with the pixels Pillow gives for
/// `ImageOps.exif_transpose(Image.open(f)).convert("RGB")`.
///
/// Handles baseline, progressive, grayscale and CMYK/YCCK JPEGs (with the EXIF orientation
/// applied) and every PNG colour type and bit depth, interlaced or not (alpha and tRNS are
/// dropped, not composited; 16-bit samples keep their high byte, except 16-bit grayscale, which
/// Pillow opens as mode "I;16" and clips to 255 when converting to RGB: we match that, so such a
/// file decodes mostly white, as it does for the Python reference). The format comes from the
/// magic bytes. Every failure is an
/// `CaptionError` naming the file (built from an `ImageProblem`); nothing crashes, nothing is printed. A value type with no shared
/// state: decode from as many threads as you like.
///
/// Deliberate differences from Pillow: a PNG whose IDAT CRC is wrong is rejected (Pillow does not
/// check it); a malformed EXIF block is ignored (Pillow raises); EXIF in a PNG is read from an
/// eXIf chunk before the image data only (not after it, nor from "Raw profile type exif" text).
public struct ImageDecoder: Sendable {
    /// 100 megapixels: a 10000×10000 photo decodes, a header claiming 60000×60000 does not.
    public static let defaultMaxPixels = 100_000_000

    /// Largest `width × height` accepted, checked from the header before the pixel buffer is
    /// allocated (a 60000×60000 header would otherwise ask for 10 GiB). 0 means no limit.
    public var maxPixels: Int

    /// A decoder refusing images of more than `maxPixels` pixels (0: no limit).
    public init(maxPixels: Int = ImageDecoder.defaultMaxPixels) {
        self.maxPixels = maxPixels
    }

    /// Reads and decodes the file at `path`.
    public func decode(path: String) throws -> RGBImage {
        let bytes = try Self.readFile(path)
        return try bytes.withUnsafeBytes { try decode(bytes: $0, name: path) }
    }

    /// Reads and decodes the file at `path` only if it is a regular file of at most `maxBytes` bytes, for
    /// walking folders of unknown content: a FIFO named `x.jpg` is refused instead of blocking the reader
    /// forever (the file is opened non-blocking and checked with `fstat` on the open descriptor, so a path
    /// swapped for something else after a directory listing is caught too), and a huge file is refused before
    /// it is read.
    public func decode(regularFile path: String, maxBytes: Int) throws -> RGBImage {
        let bytes = try Self.readFile(path, regularOnly: true, maxBytes: maxBytes)
        return try bytes.withUnsafeBytes { try decode(bytes: $0, name: path) }
    }

    /// Decodes a whole JPEG or PNG file held in memory; `name` is used in error messages.
    public func decode(data: Data, name: String = "<memory>") throws -> RGBImage {
        try data.withUnsafeBytes { try decode(bytes: $0, name: name) }
    }

    /// Decodes a whole JPEG or PNG file held in memory; `name` is used in error messages.
    public func decode(bytes: [UInt8], name: String = "<memory>") throws -> RGBImage {
        try bytes.withUnsafeBytes { try decode(bytes: $0, name: name) }
    }

    /// Decodes a whole JPEG or PNG file held in memory; `name` is used in error messages.
    public func decode(bytes: UnsafeRawBufferPointer, name: String) throws -> RGBImage {
        guard let base = bytes.baseAddress, bytes.count > 0 else {
            throw ImageProblem.emptyFile.error(name)
        }
        let data = base.assumingMemoryBound(to: UInt8.self)
        var info = cimageio_info()
        var status = cimageio_probe(data, bytes.count, limit, &info)
        guard status == CIMAGEIO_OK else { throw error(status, info, name) }
        let (width, height) = (Int(info.width), Int(info.height))
        guard width > 0, height > 0 else {
            throw ImageProblem.corrupt(ImageFormat(info.format) ?? .jpeg, "image has no pixels").error(name)
        }
        let byteCount = width * height * 3
        let pixels = [UInt8](unsafeUninitializedCapacity: byteCount) { buffer, count in
            status = cimageio_decode(data, bytes.count, limit, buffer.baseAddress, byteCount, &info)
            count = status == CIMAGEIO_OK ? byteCount : 0
        }
        guard status == CIMAGEIO_OK else { throw error(status, info, name) }
        return RGBImage(width: width, height: height, pixels: pixels)
    }

    /// Reads only the header of the file at `path`: format, size, orientation.
    public func info(path: String) throws -> ImageInfo {
        let bytes = try Self.readFile(path)
        return try bytes.withUnsafeBytes { try info(bytes: $0, name: path) }
    }

    /// Reads only the header of an in-memory file: format, size, orientation.
    public func info(bytes: UnsafeRawBufferPointer, name: String) throws -> ImageInfo {
        guard let base = bytes.baseAddress, bytes.count > 0 else {
            throw ImageProblem.emptyFile.error(name)
        }
        var info = cimageio_info()
        let status = cimageio_probe(base.assumingMemoryBound(to: UInt8.self), bytes.count, limit, &info)
        guard status == CIMAGEIO_OK, let format = ImageFormat(info.format) else { throw error(status, info, name) }
        return ImageInfo(format: format, width: Int(info.width), height: Int(info.height),
                         orientation: Int(info.orientation), storedWidth: Int(info.stored_width),
                         storedHeight: Int(info.stored_height), components: Int(info.components),
                         bitDepth: Int(info.bit_depth))
    }

    private var limit: UInt64 { UInt64(max(0, maxPixels)) }

    private func error(_ status: cimageio_status, _ info: cimageio_info, _ name: String) -> CaptionError {
        let message = Self.message(info)
        let format = ImageFormat(info.format) ?? .jpeg
        let reason: ImageProblem
        switch status {
        case CIMAGEIO_UNKNOWN_FORMAT: reason = .unknownFormat
        case CIMAGEIO_TRUNCATED: reason = .truncated(format, message)
        case CIMAGEIO_TOO_LARGE:
            reason = .tooLarge(width: Int(info.stored_width), height: Int(info.stored_height), limit: maxPixels)
        case CIMAGEIO_UNSUPPORTED: reason = .unsupported(message)
        case CIMAGEIO_OUT_OF_MEMORY: reason = .outOfMemory
        case CIMAGEIO_BAD_ARGUMENT: reason = .invalidArgument(message)
        default: reason = .corrupt(format, message)
        }
        return reason.error(name)
    }

    /// The NUL-terminated message inside `info`, never reading past its fixed buffer.
    static func message(_ info: cimageio_info) -> String {
        withUnsafeBytes(of: info.message) { raw in
            let bytes = raw.prefix { $0 != 0 }
            return String(decoding: bytes, as: UTF8.self)
        }
    }

    /// The whole file at `path`, with errno turned into a `CaptionError` naming it.
    /// `regularOnly`: open non-blocking and refuse anything but a regular file (FIFOs, sockets, devices);
    /// `maxBytes`: refuse a regular file larger than this before reading it.
    static func readFile(_ path: String, regularOnly: Bool = false, maxBytes: Int = .max) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC | (regularOnly ? O_NONBLOCK : 0))
        guard fd >= 0 else { throw Self.readProblem(errno).error(path) }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw Self.readProblem(errno).error(path) }
        if (status.st_mode & S_IFMT) == S_IFDIR { throw ImageProblem.isDirectory.error(path) }
        let isRegular = (status.st_mode & S_IFMT) == S_IFREG
        if regularOnly && !isRegular {
            throw ImageProblem.notRegularFile(fileKind(status.st_mode)).error(path)
        }
        if Int(status.st_size) > maxBytes {
            throw ImageProblem.fileTooLarge(bytes: Int(status.st_size), limit: maxBytes).error(path)
        }
        // Regular files are read into one allocation of their size plus one byte, so reaching
        // EOF needs no regrowth; pipes, devices and files that grew since fstat double as needed.
        var bytes = [UInt8](repeating: 0, count: isRegular ? Int(status.st_size) + 1 : 1 << 16)
        var filled = 0
        while true {
            if filled == bytes.count { bytes.append(contentsOf: [UInt8](repeating: 0, count: bytes.count)) }
            let got = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + filled, $0.count - filled) }
            if got < 0 {
                if errno == EINTR { continue }
                throw Self.readProblem(errno).error(path)
            }
            if got == 0 { break }
            filled += got
        }
        bytes.removeSubrange(filled...)
        if bytes.isEmpty { throw ImageProblem.emptyFile.error(path) }
        return bytes
    }

    /// "FIFO", "socket", "character device", … for messages.
    static func fileKind(_ mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFIFO: return "FIFO"
        case S_IFSOCK: return "socket"
        case S_IFCHR: return "character device"
        case S_IFBLK: return "block device"
        case S_IFLNK: return "symbolic link"
        default: return "special file"
        }
    }

    static func readProblem(_ code: Int32) -> ImageProblem {
        switch code {
        case ENOENT, ENOTDIR: return .fileNotFound
        case EACCES, EPERM: return .permissionDenied
        case EISDIR: return .isDirectory
        default: return .unreadable(String(cString: strerror(code)))
        }
    }
}

extension RGBImage {
    /// Decodes the JPEG or PNG file at `path` with the default `ImageDecoder` (100-megapixel limit).
    public init(contentsOfFile path: String) throws {
        self = try ImageDecoder().decode(path: path)
    }
}
