import Foundation

/// A COCO captioning results file: `[{"image_id": 42, "caption": "a red circle"}, ...]`, one entry
/// per image (extra fields are ignored).
public struct COCOResultsFile: Sendable {
    public let path: String
    /// Caption by image id.
    public let captions: [ImageID: String]
    /// Entry index by image id, for error messages.
    let entryIndex: [ImageID: Int]

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
            throw DataError(file: path, "cannot write: \(error.localizedDescription)")
        }
    }
}

extension CaptionMetrics {
    /// `caption metrics`: a COCO captions annotation file against a COCO results file. Every result
    /// must name an image of the annotation file; the annotation file's other images are not scored.
    public static func evaluate(annotationFile: String, resultsFile: String) throws -> MetricScores {
        let annotations = try COCOCaptionsFile.load(annotationFile)
        let results = try COCOResultsFile.load(resultsFile)
        let references = Dictionary(uniqueKeysWithValues: annotations.images.map { ($0.id, $0.captions.map(\.text)) })
        if let unknown = results.captions.keys.filter({ references[$0] == nil }).min(by: { results.entryIndex[$0]! < results.entryIndex[$1]! }) {
            let name = (annotationFile as NSString).lastPathComponent
            throw DataError(file: resultsFile, "[\(results.entryIndex[unknown]!)]: image_id \(unknown) is not in \(name)")
        }
        return try evaluate(references: references, hypotheses: results.captions, order: annotations.images.map(\.id))
    }
}
