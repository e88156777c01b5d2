import ArgumentParser
import CaptionSupport
import SyntheticWorld
import Foundation

/// `caption synth`: synthetic datasets. `caption synth shapes` is the shapes world.
struct SynthCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "synth",
        abstract: "Generate synthetic captioning datasets.",
        subcommands: [SynthShapesCommand.self]
    )
}

/// `caption synth shapes --out DIR --count N [--seed S] [--size PX]`
struct SynthShapesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shapes",
        abstract: "Write a COCO-style folder of synthetic shape scenes with true captions and object boxes.",
        discussion: """
            Scenes of 1-4 coloured shapes on a square canvas, each with several reference captions \
            (attributes, exact counts, spatial relations) and its objects' boxes in the "objects" field \
            of the images entries. Images 1...N are split in order into train/val/test. The same options \
            and seed always give the same bytes.
            """
    )

    @Option(name: .long, help: "Output folder (created; must not exist or be empty).")
    var out: String

    @Option(name: .long, help: "Number of images.")
    var count: Int

    @Option(name: .long, help: "Random seed.")
    var seed: UInt64 = 1

    @Option(name: .long, help: "Image side in pixels (32...1024).")
    var size: Int = 96

    @Option(name: .long, help: "Background: plain, noise or texture.")
    var background: ShapeBackground = .plain

    @Option(name: [.customLong("hold-out"), .customLong("holdout")],
            help: "Comma-separated colour-shape pairs kept out of train and val and put in every test image, e.g. \"red circle,blue star\".",
            transform: commaSeparated)
    var holdout: [ShapeCombination]?

    @Option(name: .long, help: "Train, val and test shares, e.g. 0.8,0.1,0.1.")
    var split: String = "0.8,0.1,0.1"

    @Option(name: .long, help: "Fewest objects per image (1...4).")
    var minObjects: Int = 1

    @Option(name: .long, help: "Most objects per image (1...4).")
    var maxObjects: Int = 4

    @Option(name: .long, help: "Reference captions per image.")
    var captionsPerImage: Int = 5

    @Option(name: .long, help: "Comma-separated shapes to draw (default: all of circle, square, triangle, star, diamond, cross).",
            transform: commaSeparated)
    var shapes: [ShapeKind]?

    @Option(name: .long, help: "Comma-separated colours to use (default: all of red, green, blue, yellow, purple, orange, white, gray).",
            transform: commaSeparated)
    var colors: [ShapeColor]?

    @OptionGroup var log: LogOptions

    func run() throws {
        log.apply()
        let writer = try ShapesDatasetWriter(world: try ShapesWorld(options: try options()), count: count, seed: seed,
                                             fractions: try fractions())
        let started = Date()
        let display = ProgressDisplay()
        defer { display.finish() }
        do {
            try writer.write(to: out) { done in
                display.update("synth shapes: \(done)/\(count) images", done: done, total: count, force: done == count)
            }
        } catch let error as CaptionError {
            throw error
        } catch {
            throw CaptionError(file: out, "\(error)")
        }
        display.finish()
        let seconds = Date().timeIntervalSince(started)
        Log.info(String(format: "synth shapes: wrote %d images to %@ in %.1f s", count, out, seconds))
        let counts = writer.splitCounts
        struct Summary: Encodable { let out: String, images: Int, train: Int, val: Int, test: Int }
        try JSONOutput.print(Summary(out: out, images: count, train: counts.train, val: counts.val, test: counts.test))
    }

    func options() throws -> ShapesWorld.Options {
        var options = ShapesWorld.Options()
        options.imageSize = size
        options.minObjects = minObjects
        options.maxObjects = maxObjects
        options.captionsPerImage = captionsPerImage
        options.background = background
        if let shapes { options.shapes = shapes }
        if let colors { options.colors = colors }
        if let holdout { options.holdout = holdout }
        return options
    }

    func fractions() throws -> (train: Double, val: Double, test: Double) {
        let parts = split.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
        guard parts.count == 3, let train = parts[0], let val = parts[1], let test = parts[2] else {
            throw ValidationError("--split must be three numbers such as 0.8,0.1,0.1, got \"\(split)\"")
        }
        return (train, val, test)
    }
}
