import CaptionData
import CaptionSupport
import Foundation

extension COCOMetrics {
    /// `caption metrics`: a COCO captions annotation file against a COCO results file. Every result
    /// must name an image of the annotation file; the annotation file's other images are not scored.
    public static func evaluate(annotationFile: String, resultsFile: String) throws -> MetricScores {
        let annotations = try COCOCaptionsFile.load(annotationFile)
        let results = try COCOResultsFile.load(resultsFile)
        let references = Dictionary(uniqueKeysWithValues: annotations.images.map { ($0.id, $0.captions.map(\.text)) })
        if let unknown = results.captions.keys.filter({ references[$0] == nil }).min(by: { results.entryIndex[$0]! < results.entryIndex[$1]! }) {
            let name = (annotationFile as NSString).lastPathComponent
            throw CaptionError(file: resultsFile, "[\(results.entryIndex[unknown]!)]: image_id \(unknown) is not in \(name)")
        }
        do {
            return try evaluate(references: references, hypotheses: results.captions, order: annotations.images.map(\.id))
        } catch {
            throw CaptionError.wrapping(error, file: resultsFile)
        }
    }
}
