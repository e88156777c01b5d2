import BatchCaptioning
import CaptionData
import CaptionMetrics
import CaptionSupport
import CaptionTraining
import Captioning
import SyntheticWorld
import Imaging
import Vision
import XCTest

/// The word → object rule of pointing accuracy and the peak → pixel mapping.
final class PointingAccuracyTests: XCTestCase {
    func object(_ shape: String, _ color: String, _ size: String = "small", x: Double, y: Double) -> SceneObject {
        SceneObject(shape: shape, color: color, size: size, bbox: BoundingBox(x: x, y: y, width: 20, height: 20))
    }

    lazy var scene = [
        object("circle", "red", x: 0, y: 0),            // 0
        object("circle", "red", "large", x: 60, y: 0),  // 1
        object("square", "blue", x: 0, y: 60),          // 2
        object("star", "green", x: 60, y: 60),          // 3
    ]

    func named(_ caption: String) -> [String: [Int]] {
        var out: [String: [Int]] = [:]
        let tokens = caption.split(separator: " ").map(String.init)
        for w in PointingAccuracy.namedWords(tokens, objects: scene) { out["\(w.index):\(w.word)"] = w.referents }
        return out
    }

    func testPhrasesNameTheObjectsWithAllTheirAttributes() {
        XCTAssertEqual(named("a large red circle above a blue square"),
                       ["2:red": [1], "3:circle": [1], "6:blue": [2], "7:square": [2]])
        XCTAssertEqual(named("two red circles"), ["1:red": [0, 1], "2:circles": [0, 1]])
        XCTAssertEqual(named("a star that is green"), ["1:star": [3], "4:green": [3]])
        XCTAssertEqual(named("two green shapes and a circle"), ["1:green": [3], "5:circle": [0, 1]])
        // A wrong phrase ("blue circle"): each word falls back to what it names alone.
        XCTAssertEqual(named("a blue circle"), ["1:blue": [2], "2:circle": [0, 1]])
        // A word naming nothing in the scene.
        XCTAssertEqual(named("a yellow cross"), ["1:yellow": [], "2:cross": []])
    }

    func testPeakMapsTheArgmaxCellCentreToImagePixels() {
        let pre = Preprocessing(resizeWidth: 96, resizeHeight: 96)
        var alpha = [Float](repeating: 0, count: 16)
        alpha[1 * 4 + 3] = 1  // row 1, column 3 of a 4×4 grid
        let p = PointingAccuracy.peak(alpha, grid: GridSize(height: 4, width: 4), preprocessing: pre, width: 192, height: 96)
        XCTAssertEqual(p.x, 3.5 * 48, accuracy: 1e-9)
        XCTAssertEqual(p.y, 1.5 * 24, accuracy: 1e-9)
        // With a centre crop 224 of 256: the grid covers pixels 16…240 of the resized image.
        let crop = Preprocessing(resizeWidth: 256, resizeHeight: 256, cropWidth: 224, cropHeight: 224)
        var first = [Float](repeating: 0, count: 4)
        first[0] = 1
        let q = PointingAccuracy.peak(first, grid: GridSize(height: 2, width: 2), preprocessing: crop, width: 256, height: 256)
        XCTAssertEqual(q.x, 16 + 56, accuracy: 1e-9)
    }

    func testCountsHitsMissesAndUnmatchedWords() {
        let pre = Preprocessing(resizeWidth: 80, resizeHeight: 80)
        let grid = GridSize(height: 4, width: 4)  // 20-pixel cells: cell (r, c) centre at (20c + 10, 20r + 10)
        func at(_ r: Int, _ c: Int) -> [Float] { var a = [Float](repeating: 0, count: 16); a[r * 4 + c] = 1; return a }
        var p = PointingAccuracy()
        // "a blue square and a yellow star": blue → square box (0,60) ✓, square → wrong cell ✗, yellow → nothing ✗,
        // star → falls back to the green star (60,60) ✓.
        p.add(tokens: ["a", "blue", "square", "and", "a", "yellow", "star"],
              alphas: [at(0, 0), at(3, 0), at(0, 3), at(0, 0), at(0, 0), at(3, 3), at(3, 3)],
              grid: grid, objects: scene, preprocessing: pre, width: 80, height: 80)
        XCTAssertEqual(p.words, 4)
        XCTAssertEqual(p.hits, 2)
        XCTAssertEqual(p.unmatched, 1)
        XCTAssertEqual(p.accuracy, 0.5)
    }

    /// The cells attention supervision targets are exactly those whose centres `add` would score as hits.
    func testSupervisionCellsAreTheHitCells() {
        let pre = Preprocessing(resizeWidth: 80, resizeHeight: 80)
        let grid = GridSize(height: 4, width: 4)  // cell centres at 10, 30, 50, 70
        // The blue square's box is x 0…20, y 60…80: centres (10, 70) → cell (3, 0).
        XCTAssertEqual(PointingAccuracy.cells(of: [2], objects: scene, grid: grid, preprocessing: pre, width: 80, height: 80), [12])
        // Both red circles: (0…20, 0…20) → cell 0; (60…80, 0…20) → cell 3.
        XCTAssertEqual(PointingAccuracy.cells(of: [0, 1], objects: scene, grid: grid, preprocessing: pre, width: 80, height: 80), [0, 3])
        for cell in 0..<16 {
            var p = PointingAccuracy(), a = [Float](repeating: 0, count: 16)
            a[cell] = 1
            p.add(tokens: ["a", "blue", "square"], alphas: [a, a, a], grid: grid, objects: scene, preprocessing: pre,
                  width: 80, height: 80)
            XCTAssertEqual(p.hits, cell == 12 ? 2 : 0, "cell \(cell)")
        }
    }
}
