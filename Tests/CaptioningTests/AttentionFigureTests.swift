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

/// The Figure-3 style attention grid and its bitmap font.
final class AttentionFigureTests: XCTestCase {
    let image = RGBImage(width: 40, height: 20, pixels: [UInt8](repeating: 128, count: 40 * 20 * 3))

    func pixel(_ im: RGBImage, _ x: Int, _ y: Int) -> [UInt8] { Array(im.pixels[((y * im.width + x) * 3)..<((y * im.width + x) * 3 + 3)]) }

    func testLayoutPlainFirstPanelAndHeatAtThePeak() {
        // α peaks in the top-left cell of a 2×4 grid.
        let alpha: [Float] = [0.65, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05]
        let fig = AttentionFigure(panelWidth: 80, columns: 2)
            .render(image: image, words: ["red", "circle", "<end>"], alphas: [alpha, alpha, alpha, alpha], grid: GridSize(height: 2, width: 4))
        // 4 panels in 2 columns: 80×40 pictures, 22 px labels, 6 px margins.
        XCTAssertEqual(fig.width, 6 + 2 * (80 + 6))
        XCTAssertEqual(fig.height, 6 + 2 * (40 + 22 + 6))
        XCTAssertEqual(pixel(fig, 6 + 40, 6 + 20), [128, 128, 128], "the first panel is the plain image")
        let panel2 = (x: 6 + 86, y: 6)
        let hot = pixel(fig, panel2.x + 2, panel2.y + 2), cold = pixel(fig, panel2.x + 78, panel2.y + 38)
        XCTAssertGreaterThan(Int(hot[0]) + Int(hot[1]) + Int(hot[2]), Int(cold[0]) + Int(cold[1]) + Int(cold[2]) + 200)
        // The label row under a word panel has dark text pixels; under the plain image it stays white.
        let labelRows = (6 + 40 + 4)..<(6 + 40 + 4 + 14)
        XCTAssertTrue(labelRows.contains { y in (panel2.x..<(panel2.x + 80)).contains { pixel(fig, $0, y) == [0, 0, 0] } })
        XCTAssertFalse(labelRows.contains { y in (6..<86).contains { pixel(fig, $0, y) != [255, 255, 255] } })
    }

    func testUniformAttentionLeavesNoHotSpot() {
        let alpha = [Float](repeating: 0.25, count: 4)
        let fig = AttentionFigure(panelWidth: 40, columns: 5).render(image: image, words: ["a"], alphas: [alpha], grid: GridSize(height: 2, width: 2))
        let a = pixel(fig, 6 + 46 + 1, 7), b = pixel(fig, 6 + 46 + 38, 6 + 18)
        XCTAssertEqual(a, b)
    }

    func testFontWidthAndUnknownGlyphs() {
        XCTAssertEqual(BitmapFont.width(of: "abc", scale: 2), (3 * 6 - 1) * 2)
        var im = RGBImage(width: 12, height: 7, pixels: [UInt8](repeating: 255, count: 12 * 7 * 3))
        BitmapFont.draw("é", into: &im, x: 0, y: 0)  // not in the font: a hollow box
        XCTAssertEqual(pixel(im, 0, 0), [0, 0, 0])
        XCTAssertEqual(pixel(im, 2, 3), [255, 255, 255])
        BitmapFont.draw("A", into: &im, x: 100, y: 100)  // clipped, no crash
    }
}
