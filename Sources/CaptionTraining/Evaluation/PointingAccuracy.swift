import Imaging
import Vision
import CaptionSupport
import CaptionData
import CaptionMetrics
import SyntheticWorld
import Captioning

/// Pointing accuracy on synthetic scenes: the share of colour and shape words of the generated captions whose
/// attention peak lies inside the box of an object the word names.
///
/// Which object a word names — the phrase rule:
///
/// 1. The caption's words are split into noun phrases: maximal runs of attribute words, i.e. sizes (`small`,
///    `large`), colours (`red` …) and shapes (`circle`, `circles` …). A colour after `that is` / `that are` that
///    follows a phrase ending in a shape joins that phrase (`a star that is green`). Other words (`a`, `two`,
///    `shapes`, `above`, `the` …) separate phrases.
/// 2. A phrase names the scene's objects that have all of its attributes: `small red circle` names every small red
///    circle, `two blue squares` every blue square, `green` (in `two green shapes`) every green object.
/// 3. If no object has all of them (the caption is wrong about that phrase), each word falls back to the objects
///    it names on its own (`circle`: every circle).
/// 4. Each colour and shape word is scored once: the peak of the α that produced it (the grid cell with the largest
///    weight, the first on ties), whose centre, mapped back to image pixels through the model's resize and crop,
///    must lie in the box (edges included) of any object the word names. When several objects fit — two red
///    circles, or a phrase that does not single one out — any of them counts. A word that names no object of the
///    scene at all counts as a miss. Size words and other words are not scored.
public struct PointingAccuracy: Equatable, Sendable {
    /// Colour and shape words scored, and how many pointed into a named object.
    public var words = 0
    /// Scored words whose attention peak lay inside a box of an object they name.
    public var hits = 0
    /// Scored words that named nothing in the scene (already counted as misses).
    public var unmatched = 0

    /// No words scored yet.
    public init() {}

    /// hits / words (0 when no word was scored).
    public var accuracy: Double { words > 0 ? Double(hits) / Double(words) : 0 }

    /// One scored word: its position in the caption and the objects it names (empty: none).
    public struct NamedWord: Equatable, Sendable {
        /// Position of the word in the caption's tokens (0-based).
        public var index: Int
        /// The colour or shape word itself.
        public var word: String
        /// Indices into the scene's `objects` of the objects the word names.
        public var referents: [Int]
    }

    static let sizes: Set<String> = Set(ShapeSize.allCases.map(\.rawValue))
    static let colors: Set<String> = Set(ShapeColor.allCases.map(\.rawValue))
    static let shapeOfWord: [String: String] = {
        var m: [String: String] = [:]
        for s in ShapeKind.allCases { m[s.rawValue] = s.rawValue; m[s.plural] = s.rawValue }
        return m
    }()

    /// The colour and shape words of a caption with the objects each names (the phrase rule above).
    public static func namedWords(_ tokens: [String], objects: [SceneObject]) -> [NamedWord] {
        func isAttribute(_ w: String) -> Bool { sizes.contains(w) || colors.contains(w) || shapeOfWord[w] != nil }
        // Phrases as index lists.
        var phrases: [[Int]] = []
        var i = 0
        while i < tokens.count {
            if isAttribute(tokens[i]) {
                var phrase: [Int] = []
                while i < tokens.count && isAttribute(tokens[i]) { phrase.append(i); i += 1 }
                // "… star that is green": the trailing colour joins the phrase.
                if let last = phrase.last, shapeOfWord[tokens[last]] != nil, i + 2 < tokens.count, tokens[i] == "that",
                   tokens[i + 1] == "is" || tokens[i + 1] == "are", colors.contains(tokens[i + 2]) {
                    phrase.append(i + 2)
                    i += 3
                }
                phrases.append(phrase)
            } else {
                i += 1
            }
        }
        var result: [NamedWord] = []
        for phrase in phrases {
            let words = phrase.map { tokens[$0] }
            let size = words.last { sizes.contains($0) }, color = words.last { colors.contains($0) }
            let shape = words.compactMap { shapeOfWord[$0] }.last
            let all = objects.indices.filter { o in
                (size == nil || objects[o].size == size) && (color == nil || objects[o].color == color)
                    && (shape == nil || objects[o].shape == shape)
            }
            for index in phrase {
                let w = tokens[index]
                let normalized = shapeOfWord[w] ?? w
                guard colors.contains(w) || shapeOfWord[w] != nil else { continue }
                let referents = all.isEmpty ? objects.indices.filter { objects[$0].color == normalized || objects[$0].shape == normalized } : all
                result.append(NamedWord(index: index, word: w, referents: referents))
            }
        }
        return result
    }

    /// The centre of the attention peak in original image pixels: the argmax cell of `alpha` on the `grid`, through
    /// `preprocessing`'s resize (and centre crop) of a `width`×`height` image.
    public static func peak(_ alpha: [Float], grid: GridSize, preprocessing: Preprocessing, width: Int, height: Int) -> (x: Double, y: Double) {
        var best = 0
        for i in alpha.indices where alpha[i] > alpha[best] { best = i }
        return cellCentre(best, grid: grid, preprocessing: preprocessing, width: width, height: height)
    }

    /// The grid cells whose centres lie in the box of any of `objects[referents]`, ascending: where a word naming
    /// them should look (the cells `peak` would score as hits).
    public static func cells(of referents: [Int], objects: [SceneObject], grid: GridSize, preprocessing: Preprocessing,
                             width: Int, height: Int) -> [Int] {
        (0..<(grid.height * grid.width)).filter { cell in
            let p = cellCentre(cell, grid: grid, preprocessing: preprocessing, width: width, height: height)
            return referents.contains { objects[$0].bbox.contains(x: p.x, y: p.y) }
        }
    }

    /// The centre of grid cell `cell` (row-major) in original image pixels.
    static func cellCentre(_ cell: Int, grid: GridSize, preprocessing: Preprocessing, width: Int, height: Int) -> (x: Double, y: Double) {
        let row = cell / grid.width, col = cell % grid.width
        let (rw, rh) = (Double(preprocessing.resizeWidth), Double(preprocessing.resizeHeight))
        let (cw, ch) = (Double(preprocessing.outputWidth), Double(preprocessing.outputHeight))
        // torchvision's CenterCrop offset: round((resized − crop) / 2).
        let left = ((rw - cw) / 2).rounded(), top = ((rh - ch) / 2).rounded()
        let xr = left + (Double(col) + 0.5) * cw / Double(grid.width)
        let yr = top + (Double(row) + 0.5) * ch / Double(grid.height)
        return (xr * Double(width) / rw, yr * Double(height) / rh)
    }

    /// Scores one generated caption: `tokens[i]` was produced with attention `alphas[i]` over `grid`.
    public mutating func add(tokens: [String], alphas: [[Float]], grid: GridSize, objects: [SceneObject],
                             preprocessing: Preprocessing, width: Int, height: Int) {
        for named in PointingAccuracy.namedWords(tokens, objects: objects) where named.index < alphas.count {
            words += 1
            if named.referents.isEmpty { unmatched += 1; continue }
            let p = PointingAccuracy.peak(alphas[named.index], grid: grid, preprocessing: preprocessing, width: width, height: height)
            if named.referents.contains(where: { objects[$0].bbox.contains(x: p.x, y: p.y) }) { hits += 1 }
        }
    }
}
