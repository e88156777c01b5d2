import Foundation
import CaptionSupport

/// Merges the outputs of the shards of one `caption batch` run into one file (`caption batch-merge`): the records
/// are copied byte for byte, so the merge of N sorted shards equals one unsharded `--sorted` run's output.
///
/// Every input must be a complete batch output of the same format (JSONL or CSV, told by content): a torn last
/// record (a shard that was killed) or a line that is not a record is refused, and so is an image recorded twice,
/// in one file or across files (shards of different runs, or of different N). The inputs are held in memory.
public enum BatchMerge {
    /// What a merge wrote.
    public struct Summary: Sendable {
        /// The inputs' (and so the output's) format; nil when every input was empty.
        public let format: BatchFormat?
        public let records: Int
        public let files: Int
    }

    /// Reads `inputs`, checks them as described above and writes their records to `output` atomically (a temporary
    /// file renamed into place: a failed merge leaves no partial file), in input order, or with `sorted` in the order
    /// of a sorted walk (`caption batch --sorted`).
    @discardableResult
    public static func merge(inputs: [String], into output: String, sorted: Bool) throws -> Summary {
        var format: BatchFormat?, firstOfFormat = ""
        var contents: [[UInt8]] = []
        var records: [(file: Int, record: StoredRecord)] = []
        var seen: [String: Int] = [:]
        var given: [String: String] = [:]
        for (n, input) in inputs.enumerated() {
            let resolved = URL(fileURLWithPath: input).standardizedFileURL.resolvingSymlinksInPath().path
            if let earlier = given.updateValue(input, forKey: resolved) {
                throw CaptionError(file: input, "given twice" + (earlier == input ? "" : " (as \(earlier) too)"))
            }
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: input, isDirectory: &isFolder) else { throw CaptionError(file: input, "no such file") }
            guard !isFolder.boolValue else { throw CaptionError(file: input, "is a folder, not a batch output") }
            guard let data = FileManager.default.contents(atPath: input) else { throw CaptionError(file: input, "cannot read") }
            let bytes = [UInt8](data)
            contents.append(bytes)
            guard let kind = try detect(bytes, file: input) else { continue }
            if let format, format != kind {
                throw CaptionError(file: input, "is \(kind.rawValue) but \(firstOfFormat) is \(format.rawValue); merge outputs of one format")
            }
            if format == nil { (format, firstOfFormat) = (kind, input) }
            let (stored, end) = try BatchOutput.storedRecords(bytes, format: kind, file: input, refusal: "not merging it")
            guard end == bytes.count else {
                throw CaptionError(file: input, "its last line is not a complete caption batch record (torn by an interrupted "
                                   + "run? finish that shard with caption batch --resume); not merging it")
            }
            for record in stored {
                if let other = seen[record.image] {
                    let place = other == n ? "twice in this file" : "in \(inputs[other]) too"
                    throw CaptionError(file: input, "\(record.image) is recorded \(place); the shards of one run never overlap")
                }
                seen[record.image] = n
                records.append((n, record))
            }
        }
        if sorted { records.sort { FolderWalk.walkPrecedes($0.record.image, $1.record.image) } }

        var merged: [UInt8] = []
        merged.reserveCapacity(contents.reduce(0) { $0 + $1.count })
        if format == .csv { merged += Array(CSV.line(BatchFormat.csvColumns).utf8) }
        for (file, record) in records { merged += contents[file][record.range] }
        do {
            try Data(merged).write(to: URL(fileURLWithPath: output), options: .atomic)
        } catch {
            throw CaptionError(file: output, "cannot write: \((error as NSError).localizedDescription)")
        }
        return Summary(format: format, records: records.count, files: inputs.count)
    }

    /// The format of a batch output by its first bytes; nil for an empty file.
    static func detect(_ bytes: [UInt8], file: String) throws -> BatchFormat? {
        guard let first = bytes.first else { return nil }
        if first == UInt8(ascii: "{") { return .jsonl }
        if bytes.starts(with: Array(CSV.line(BatchFormat.csvColumns).utf8.dropLast())) { return .csv }
        throw CaptionError(file: file, "not a caption batch output (neither JSON lines nor CSV with the header "
                           + "\(BatchFormat.csvColumns.joined(separator: ","))); not merging it")
    }
}

extension FolderWalk {
    /// The order of names within a folder in a sorted walk: their UTF-8 bytes.
    static func namePrecedes(_ a: String, _ b: String) -> Bool { a.utf8.lexicographicallyPrecedes(b.utf8) }

    /// True when the sorted walk of a folder (`caption batch --sorted`) yields path `a` before path `b`: depth
    /// first with each folder's names in byte order, which is comparing them name by name. (Comparing the whole
    /// paths' bytes is not the same: `a-b` sorts before `a/x` by bytes, but the walk enters `a` first.)
    public static func walkPrecedes(_ a: String, _ b: String) -> Bool {
        let slash = UInt8(ascii: "/")
        return a.utf8.split(separator: slash, omittingEmptySubsequences: false)
            .lexicographicallyPrecedes(b.utf8.split(separator: slash, omittingEmptySubsequences: false)) {
                $0.lexicographicallyPrecedes($1)
            }
    }
}
