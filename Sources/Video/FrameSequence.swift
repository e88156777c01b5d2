import CaptionSupport
import Foundation
import Imaging
import TensorCore

/// Reads a sequence of frames: a folder of PNG/JPEG files (in name order), or a video file decoded through
/// an `ffmpeg` subprocess when one is installed.
public enum SequenceReader {
    /// Video file extensions recognised when a data folder is scanned for sequences (a sequence named
    /// explicitly may be any file).
    public static let videoExtensions: Set<String> = ["mp4", "m4v", "mov", "avi", "mkv", "webm", "gif", "mpg",
                                                      "mpeg", "wmv", "flv", "ogv", "3gp", "ts"]

    /// The decoded frames of the sequence at `path`, at most `maxFrames` of them (all when nil).
    /// Throws `CaptionError` naming the file and the problem.
    public static func images(at path: String, maxFrames: Int? = nil,
                              decoder: ImageDecoder = ImageDecoder()) throws -> [RGBImage] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw CaptionError(file: path, "no such file or folder", kind: .notFound)
        }
        if isDirectory.boolValue {
            var files = try frameFiles(in: path)
            if let maxFrames { files = Array(files.prefix(maxFrames)) }
            return try files.map { try decoder.decode(path: $0) }
        }
        return try decodeVideo(path, maxFrames: maxFrames, decoder: decoder)
    }

    /// The image files of a frame folder in natural name order (`frame_2` before `frame_10`; the same as
    /// plain order for zero-padded names). Hidden files and files that are neither PNG nor JPEG (by content)
    /// are skipped. Throws when there is no frame at all.
    public static func frameFiles(in folder: String) throws -> [String] {
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: folder) } catch {
            throw CaptionError(file: folder, "cannot list folder")
        }
        let files = names.filter { !$0.hasPrefix(".") }.sorted(by: naturalOrder).map { folder + "/" + $0 }
            .filter { ImageFormat.sniff(path: $0) != nil }
        if files.isEmpty { throw CaptionError(file: folder, "no PNG or JPEG frames in folder") }
        return files
    }

    /// The sequences of a data folder: its subfolders and video files, in natural name order.
    public static func sequences(in folder: String) throws -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory) else {
            throw CaptionError(file: folder, "no such folder", kind: .notFound)
        }
        guard isDirectory.boolValue else { throw CaptionError(file: folder, "not a folder of sequences") }
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: folder) } catch {
            throw CaptionError(file: folder, "cannot list folder")
        }
        var out: [String] = []
        for name in names.sorted(by: naturalOrder) where !name.hasPrefix(".") {
            let path = folder + "/" + name
            var isDir: ObjCBool = false
            _ = FileManager.default.fileExists(atPath: path, isDirectory: &isDir)
            if isDir.boolValue || videoExtensions.contains((name as NSString).pathExtension.lowercased()) {
                out.append(path)
            }
        }
        if out.isEmpty { throw CaptionError(file: folder, "no sequences (subfolders of frames or video files) in folder") }
        return out
    }

    /// Natural order: digit runs compare as numbers, everything else bytewise.
    public static func naturalOrder(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        var i = 0, j = 0
        func isDigit(_ c: UInt8) -> Bool { c >= 48 && c <= 57 }
        while i < x.count && j < y.count {
            if isDigit(x[i]) && isDigit(y[j]) {
                var i2 = i, j2 = j
                while i2 < x.count && isDigit(x[i2]) { i2 += 1 }
                while j2 < y.count && isDigit(y[j2]) { j2 += 1 }
                let u = x[i..<i2].drop { $0 == 48 }, v = y[j..<j2].drop { $0 == 48 }
                if u.count != v.count { return u.count < v.count }
                if !u.elementsEqual(v) { return u.lexicographicallyPrecedes(v) }
                if i2 - i != j2 - j { return i2 - i > j2 - j }  // more leading zeros first
                i = i2; j = j2
            } else {
                if x[i] != y[j] { return x[i] < y[j] }
                i += 1; j += 1
            }
        }
        return x.count - i < y.count - j
    }

    // MARK: ffmpeg

    /// The `ffmpeg` executable on `PATH`, or nil.
    public static var ffmpegPath: String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for dir in path.split(separator: ":") {
            let candidate = String(dir) + "/ffmpeg"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// Decodes a video file to frames through `ffmpeg` (into a temporary folder of PNGs, removed afterwards).
    static func decodeVideo(_ path: String, maxFrames: Int?, decoder: ImageDecoder) throws -> [RGBImage] {
        guard FileManager.default.isReadableFile(atPath: path) else { throw CaptionError(file: path, "cannot read file") }
        guard let ffmpeg = ffmpegPath else {
            throw CaptionError(file: path, "reading a video file needs ffmpeg, which is not installed "
                             + "(install it, or pass a folder of PNG/JPEG frames)")
        }
        let temporary = FileManager.default.temporaryDirectory
            .appendingPathComponent("caption-video-\(getpid())-\(UInt32.random(in: 0 ... .max))").path
        do { try FileManager.default.createDirectory(atPath: temporary, withIntermediateDirectories: true) } catch {
            throw CaptionError(file: temporary, "cannot create a temporary folder for the decoded frames")
        }
        defer { try? FileManager.default.removeItem(atPath: temporary) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ffmpeg)
        var arguments = ["-nostdin", "-v", "error", "-i", path]
        if let maxFrames { arguments += ["-frames:v", String(maxFrames)] }
        process.arguments = arguments + ["-f", "image2", temporary + "/%06d.png"]
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        do { try process.run() } catch { throw CaptionError(file: path, "cannot run \(ffmpeg)") }
        let message = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        if process.terminationStatus != 0 {
            let line = String(decoding: message, as: UTF8.self).split(separator: "\n").last.map(String.init) ?? ""
            throw CaptionError(file: path, "ffmpeg cannot decode the video" + (line.isEmpty ? "" : ": " + line))
        }
        let files = (try? frameFiles(in: temporary)) ?? []
        if files.isEmpty { throw CaptionError(file: path, "ffmpeg found no video frames in the file") }
        return try files.map { file in
            do { return try decoder.decode(path: file) } catch {
                throw CaptionError(file: path, "ffmpeg produced an unreadable frame")
            }
        }
    }
}

/// Turns a decoded frame into the model's input vector, and back (for pixels).
public struct FrameEncoder {
    /// D, the length of one frame vector.
    public let dimension: Int
    private let body: (RGBImage, UnsafeMutablePointer<Float>) -> Void

    /// A custom encoder (e.g. a CNN's pooled features) writing `dimension` floats per frame.
    public init(dimension: Int, _ body: @escaping (RGBImage, UnsafeMutablePointer<Float>) -> Void) {
        self.dimension = dimension
        self.body = body
    }

    /// Pixels: resized to `size × size` (Pillow-exact bilinear), gray (Pillow's `convert("L")` luma) or RGB
    /// (channel-major, C×H×W), scaled to [0, 1].
    public static func pixels(size: Int, channels: Int) -> FrameEncoder {
        FrameEncoder(dimension: channels * size * size) { image, out in
            let resized = image.resized(width: size, height: size)
            let plane = size * size
            resized.pixels.withUnsafeBufferPointer { px in
                for i in 0..<plane {
                    let r = UInt32(px[3 * i]), g = UInt32(px[3 * i + 1]), b = UInt32(px[3 * i + 2])
                    if channels == 1 {
                        out[i] = Float((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16) / 255
                    } else {
                        out[i] = Float(r) / 255; out[plane + i] = Float(g) / 255; out[2 * plane + i] = Float(b) / 255
                    }
                }
            }
        }
    }

    /// The frame vector of `image` (`dimension` floats).
    public func encode(_ image: RGBImage) -> [Float] {
        [Float](unsafeUninitializedCapacity: dimension) { buffer, count in
            body(image, buffer.baseAddress!)
            count = dimension
        }
    }

    /// Writes the frame vector of `image` at `destination`.
    public func encode(_ image: RGBImage, into destination: UnsafeMutablePointer<Float>) { body(image, destination) }

    /// A pixel frame vector (gray or channel-major RGB in [0, 1], `size × size`) as an RGB image.
    public static func image(_ frame: UnsafePointer<Float>, size: Int, channels: Int) -> RGBImage {
        let plane = size * size
        var pixels = [UInt8](repeating: 0, count: plane * 3)
        let byte = { (v: Float) -> UInt8 in UInt8(min(max(v, 0), 1) * 255 + 0.5) }
        for i in 0..<plane {
            if channels == 1 {
                let v = byte(frame[i])
                pixels[3 * i] = v; pixels[3 * i + 1] = v; pixels[3 * i + 2] = v
            } else {
                pixels[3 * i] = byte(frame[i]); pixels[3 * i + 1] = byte(frame[plane + i])
                pixels[3 * i + 2] = byte(frame[2 * plane + i])
            }
        }
        return RGBImage(width: size, height: size, pixels: pixels)
    }
}
