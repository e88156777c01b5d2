import CaptionSupport
import CImageIO
import Foundation

extension RGBImage {
    /// The image encoded as an 8-bit RGB, non-interlaced PNG.
    ///
    /// - Parameter compressionLevel: zlib level 0...9 (6 is zlib's default; 1 is several times
    ///   faster and suits throwaway frames).
    public func pngData(compressionLevel: Int = 6) throws -> [UInt8] {
        guard width > 0, height > 0, width <= Int(Int32.max), height <= Int(Int32.max) else {
            throw ImageProblem.invalidArgument("cannot write a \(width)×\(height) image as PNG").error("<memory>")
        }
        var output: UnsafeMutablePointer<UInt8>?
        var outputSize = 0
        var message = [CChar](repeating: 0, count: Int(CIMAGEIO_MESSAGE_SIZE))
        let status = pixels.withUnsafeBufferPointer { rgb in
            cimageio_encode_png(rgb.baseAddress, UInt32(width), UInt32(height), Int32(clamping: compressionLevel),
                                &output, &outputSize, &message)
        }
        defer { cimageio_free(output) }
        guard status == CIMAGEIO_OK, let output else {
            let why = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw (status == CIMAGEIO_OUT_OF_MEMORY ? ImageProblem.outOfMemory : .invalidArgument(why)).error("<memory>")
        }
        return [UInt8](UnsafeBufferPointer(start: output, count: outputSize))
    }

    /// Writes the image as a PNG at `path`, atomically: the bytes go to a temporary file in the
    /// same folder which is then renamed over `path`, so readers never see a partial file and a
    /// failure leaves any previous file untouched.
    public func writePNG(to path: String, compressionLevel: Int = 6) throws {
        var data: [UInt8]
        do {
            data = try pngData(compressionLevel: compressionLevel)
        } catch let error as CaptionError {
            throw CaptionError(file: path, error.problem, kind: error.kind)
        }
        try writeFileAtomically(data, to: path)
    }
}

/// Writes `bytes` to `path` via a temporary sibling file and rename(2).
func writeFileAtomically(_ bytes: [UInt8], to path: String) throws {
    let url = URL(fileURLWithPath: path)
    let directory = url.deletingLastPathComponent().path
    let temporary = directory + "/." + url.lastPathComponent + ".tmp-\(getpid())-\(UInt32.random(in: 0 ... .max))"
    func failure(_ code: Int32) -> CaptionError {
        let why: String
        switch code {
        case EACCES, EPERM: why = "permission denied"
        case ENOENT: why = "no such folder \(directory)"
        default: why = String(cString: strerror(code))
        }
        return ImageProblem.writeFailed(why).error(path)
    }
    let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw failure(errno) }
    var written = 0
    while written < bytes.count {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, $0.count - written) }
        if n < 0 {
            if errno == EINTR { continue }
            let code = errno
            close(fd)
            unlink(temporary)
            throw failure(code)
        }
        written += n
    }
    if close(fd) != 0 {
        let code = errno
        unlink(temporary)
        throw failure(code)
    }
    if rename(temporary, path) != 0 {
        let code = errno
        unlink(temporary)
        throw failure(code == EISDIR ? EISDIR : code)
    }
}
