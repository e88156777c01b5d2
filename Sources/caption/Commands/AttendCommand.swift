import ArgumentParser
import Captioning
import Foundation
import Imaging

/// `caption attend IMAGE --out FILE.png [--weights DIR] [--beam K]`
struct AttendCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attend",
        abstract: "Draw where the model looks for each word (Figure 3 of Show, Attend and Tell).",
        discussion: """
            Captions the image, then writes a PNG grid: the image, then per generated word the image with that \
            step's attention map α upsampled and blended over it as a heat map, labelled with the word. \
            Prints `PATH<TAB>caption` on stdout. The PNG is written atomically.
            """
    )

    @Argument(help: "Image file (JPEG or PNG).")
    var image: String

    @Option(name: .long, help: "Output PNG file.")
    var out: String

    @OptionGroup var model: ModelOptions
    @OptionGroup var search: SearchOptions

    @Option(name: .long, help: "Width of each panel in pixels.")
    var panelWidth = 224

    @Option(name: .long, help: "Panels per row.")
    var columns = 5

    func validate() throws {
        guard panelWidth >= 16 && panelWidth <= 4096 else { throw ValidationError("--panel-width must be in 16...4096") }
        guard columns >= 1 else { throw ValidationError("--columns must be at least 1") }
    }

    func run() throws {
        let captioner = try model.loadCaptioner()
        let decoded = try captioner.extractor.decoder.decode(path: image)
        let r = captioner.caption(image: decoded, beam: search.beam, maxLength: search.maxLength,
                                  lengthPenalty: search.lengthPenalty)
        // The grid covers what the network sees: the whole image, or its centre crop when the model crops.
        let pre = captioner.preprocessing
        let view = pre.cropWidth == nil ? decoded : pre.image(decoded)
        let figure = AttentionFigure(panelWidth: panelWidth, columns: columns)
            .render(image: view, words: r.tokens, alphas: r.alphas, grid: r.grid)
        try figure.writePNG(to: out)
        print("\(image)\t\(r.caption)")
        Log.info("\(out): \(r.tokens.count) attention maps (\(r.grid.height)×\(r.grid.width) grid), \(figure.width)×\(figure.height) px")
    }
}
