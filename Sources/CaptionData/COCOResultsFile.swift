import Foundation
import CaptionSupport

/// A COCO captioning results file: `[{"image_id": 42, "caption": "a red circle"}, ...]`, one entry
/// per image (extra fields are ignored).
public struct COCOResultsFile: Sendable {
    /// The file read.
    public let path: String
    /// Caption by image id.
    public let captions: [ImageID: String]
    /// Entry index by image id, for error messages.
    public let entryIndex: [ImageID: Int]

    /// Reads and validates `path`: an array of objects with an integer `image_id` and a string
    /// `caption`, no image twice, at least one entry.
    public static func load(_ path: String) throws -> COCOResultsFile {
        let (input, root) = try JSONInput.load(path)
        let entries = try input.array(root, "top level")
        guard !entries.isEmpty else { throw input.error("no results (empty array)") }
        var captions: [ImageID: String] = [:]
        var entryIndex: [ImageID: Int] = [:]
        for (i, entry) in entries.enumerated() {
            let object = try input.object(entry, "[\(i)]")
            let id = try input.int(object["image_id"], "[\(i)].image_id")
            let caption = try input.string(object["caption"], "[\(i)] (image_id \(id)).caption")
            if let first = entryIndex[id] {
                throw input.error("[\(i)]: a second caption for image_id \(id) (first at [\(first)])")
            }
            captions[id] = caption
            entryIndex[id] = i
        }
        return COCOResultsFile(path: path, captions: captions, entryIndex: entryIndex)
    }

    /// Writes `[{"image_id": ..., "caption": ...}]` (ids ascending) atomically, for `caption eval --out`.
    public static func write(_ captions: [ImageID: String], to path: String) throws {
        let entries = captions.keys.sorted().map { ["image_id": $0, "caption": captions[$0]!] as [String: Any] }
        do {
            let data = try JSONSerialization.data(withJSONObject: entries, options: [.sortedKeys, .withoutEscapingSlashes])
            try data.write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw CaptionError(file: path, "cannot write: \(error.localizedDescription)")
        }
    }
}
