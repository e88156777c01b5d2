import Foundation
import TensorCore
import CaptionSupport
import Captioning
#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// Where a batch run's records go: a file, or stdout. Every record is one `write(2)` of a whole line, straight
/// to the descriptor (no buffering), so a run that is killed leaves complete lines and at worst one torn last
/// line, which `--resume` cuts off before appending.
public final class BatchOutput {
    /// The file, or nil for stdout.
    public let path: String?
    /// How each record is written: JSON lines or CSV.
    public let format: BatchFormat
    /// The images already recorded in the file (`--resume`); the run skips them.
    public private(set) var recorded: Set<String> = []
    /// Bytes of a torn last record that `--resume` cut off (0 when the file ended cleanly).
    public private(set) var repairedBytes = 0
    private let fd: Int32
    private var name: String { path ?? "<stdout>" }

    /// Records on stdout (a CSV header first).
    public init(standardOutputIn format: BatchFormat) throws {
        path = nil
        self.format = format
        fd = STDOUT_FILENO
        if format == .csv { try write(CSV.line(BatchFormat.csvColumns)) }
    }

    /// Creates (or empties) `path`, or with `resume` reads the records already in it, cuts a torn last line and
    /// appends after them. A file that holds anything but this format's records is left alone and refused.
    public init(path: String, format: BatchFormat, resume: Bool) throws {
        self.path = path
        self.format = format
        var existing: [UInt8] = []
        if resume, let data = FileManager.default.contents(atPath: path) { existing = [UInt8](data) }
        let flags = O_WRONLY | O_CREAT | O_CLOEXEC | (resume ? 0 : O_TRUNC)
        if resume && !existing.isEmpty {
            let (images, end) = try Self.recordedImages(existing, format: format, file: path)
            recorded = images
            repairedBytes = existing.count - end
            fd = open(path, flags, 0o644)
            guard fd >= 0 else { throw CaptionError(file: path, "cannot open for writing: \(String(cString: strerror(errno)))") }
            guard ftruncate(fd, off_t(end)) == 0, lseek(fd, 0, SEEK_END) >= 0 else {
                let why = String(cString: strerror(errno))
                close(fd)
                throw CaptionError(file: path, "cannot cut the torn last line: \(why)")
            }
        } else {
            fd = open(path, flags, 0o644)
            guard fd >= 0 else { throw CaptionError(file: path, "cannot open for writing: \(String(cString: strerror(errno)))") }
            if format == .csv { try write(CSV.line(BatchFormat.csvColumns)) }
        }
    }

    deinit { if path != nil { close(fd) } }

    /// Appends one record.
    public func write(_ record: BatchRecord) throws { try write(record.line(format)) }

    /// Flushes the file to disk at the end of a run (records are already in the kernel after each write).
    public func finish() throws {
        guard path != nil else { return }
        guard fsync(fd) == 0 else { throw CaptionError(file: name, "cannot write: \(String(cString: strerror(errno)))") }
    }

    private func write(_ line: String) throws {
        let code = Array(line.utf8).withUnsafeBytes { writeFully(fd, $0) }
        if code != 0 { throw CaptionError(file: name, "cannot write: \(String(cString: strerror(code)))") }
    }

    /// The image paths of the complete records in `bytes` and the length they end at (the rest is a torn tail).
    /// A last line that is complete but unreadable counts as torn too; a bad line before it is an error.
    static func recordedImages(_ bytes: [UInt8], format: BatchFormat, file: String) throws -> (Set<String>, Int) {
        let (records, end) = try storedRecords(bytes, format: format, file: file)
        return (Set(records.map(\.image)), end)
    }

    /// The complete records in `bytes` (a CSV header is not one) with the byte range of each one's line, newline
    /// included, and the length they end at (the rest is a torn tail); see `recordedImages`. `refusal` ends the
    /// message about a file that is not a batch output.
    static func storedRecords(_ bytes: [UInt8], format: BatchFormat, file: String, refusal: String = "not resuming into it") throws -> (records: [StoredRecord], end: Int) {
        var stored: [StoredRecord] = []
        switch format {
        case .csv:
            let (records, ends) = CSV.scan(bytes)
            guard let header = records.first else { return ([], 0) }
            guard header == BatchFormat.csvColumns else {
                throw CaptionError(file: file, "not a caption batch CSV (first line is not \(BatchFormat.csvColumns.joined(separator: ","))); \(refusal)")
            }
            for (i, r) in records.enumerated().dropFirst() {
                guard r.count == BatchFormat.csvColumns.count else {
                    throw CaptionError(file: file, "record \(i + 1) has \(r.count) fields, expected \(BatchFormat.csvColumns.count); \(refusal)")
                }
                stored.append(StoredRecord(image: r[0], range: ends[i - 1]..<ends[i]))
            }
            return (stored, ends.last ?? 0)
        case .jsonl:
            var start = 0, end = 0, line = 0
            while let newline = bytes[start...].firstIndex(of: UInt8(ascii: "\n")) {
                line += 1
                let text = Data(bytes[start..<newline])
                let object = try? JSONSerialization.jsonObject(with: text) as? [String: Any]
                if let image = object?["image"] as? String {
                    stored.append(StoredRecord(image: image, range: start..<(newline + 1)))
                    end = newline + 1
                } else if bytes[(newline + 1)...].contains(UInt8(ascii: "\n")) {
                    throw CaptionError(file: file, "line \(line) is not a caption batch record; \(refusal)")
                }
                start = newline + 1
            }
            return (stored, end)
        }
    }
}

/// One complete record of a batch output file: its image and the byte range of its line (newline included).
struct StoredRecord {
    let image: String
    let range: Range<Int>
}
