import ArgumentParser
import Captioning
import CaptionData
import CaptionMetrics
import CaptionSupport
import CaptionTraining
import SyntheticWorld
import BatchCaptioning
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
    var background: String = ShapeBackground.plain.rawValue

    @Option(name: .long, help: "Comma-separated colour-shape pairs kept out of train and val and put in every test image, e.g. \"red circle,blue star\".")
    var holdout: String?

    @Option(name: .long, help: "Train, val and test shares, e.g. 0.8,0.1,0.1.")
    var split: String = "0.8,0.1,0.1"

    @Option(name: .long, help: "Fewest objects per image (1...4).")
    var minObjects: Int = 1

    @Option(name: .long, help: "Most objects per image (1...4).")
    var maxObjects: Int = 4

    @Option(name: .long, help: "Reference captions per image.")
    var captionsPerImage: Int = 5

    @Option(name: .long, help: "Comma-separated shapes to draw (default: all of circle, square, triangle, star, diamond, cross).")
    var shapes: String?

    @Option(name: .long, help: "Comma-separated colours to use (default: all of red, green, blue, yellow, purple, orange, white, gray).")
    var colors: String?

    @Flag(name: .long, help: "No progress on stderr.")
    var quiet = false

    func run() throws {
        Log.quiet = quiet
        let writer: ShapesDatasetWriter
        do {
            writer = try ShapesDatasetWriter(world: try ShapesWorld(options: try options()), count: count, seed: seed,
                                             fractions: try fractions())
        } catch let error as CaptionSupport.CaptionError where error.kind == .usage {
            throw ValidationError(error.description)
        }
        let started = Date()
        do {
            try writer.write(to: out) { done in
                if Log.stderrIsTerminal && !Log.quiet {
                    FileHandle.standardError.write(Data("\rsynth shapes: \(done)/\(count) images".utf8))
                    if done == count { FileHandle.standardError.write(Data("\n".utf8)) }
                } else {
                    Log.info("synth shapes: \(done)/\(count) images")
                }
            }
        } catch let error as CaptionError {
            throw CaptionError(error.description)
        } catch {
            throw CaptionError(file: out, "\(error)")
        }
        let seconds = Date().timeIntervalSince(started)
        Log.info(String(format: "synth shapes: wrote %d images to %@ in %.1f s", count, out, seconds))
        let counts = writer.splitCounts
        print("{\"out\": \(jsonString(out)), \"images\": \(count), \"train\": \(counts.train), \"val\": \(counts.val), \"test\": \(counts.test)}")
    }

    func options() throws -> ShapesWorld.Options {
        var options = ShapesWorld.Options()
        options.imageSize = size
        options.minObjects = minObjects
        options.maxObjects = maxObjects
        options.captionsPerImage = captionsPerImage
        guard let background = ShapeBackground(rawValue: background) else {
            throw ValidationError("--background must be plain, noise or texture, got \"\(background)\"")
        }
        options.background = background
        if let shapes {
            options.shapes = try list(shapes).map { name in
                guard let shape = ShapeKind(rawValue: name) else {
                    throw ValidationError("--shapes: unknown shape \"\(name)\" (known: \(ShapeKind.allCases.map(\.rawValue).joined(separator: ", ")))")
                }
                return shape
            }
        }
        if let colors {
            options.colors = try list(colors).map { name in
                guard let color = ShapeColor(rawValue: name) else {
                    throw ValidationError("--colors: unknown colour \"\(name)\" (known: \(ShapeColor.allCases.map(\.rawValue).joined(separator: ", ")))")
                }
                return color
            }
        }
        if let holdout {
            options.holdout = try list(holdout).map { pair in
                guard let combination = ShapeCombination(pair) else {
                    throw ValidationError("--holdout: \"\(pair)\" is not a colour and a shape such as \"red circle\"")
                }
                return combination
            }
        }
        return options
    }

    func fractions() throws -> (train: Double, val: Double, test: Double) {
        let parts = split.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
        guard parts.count == 3, let train = parts[0], let val = parts[1], let test = parts[2] else {
            throw ValidationError("--split must be three numbers such as 0.8,0.1,0.1, got \"\(split)\"")
        }
        return (train, val, test)
    }

    func list(_ text: String) -> [String] {
        text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }.filter { !$0.isEmpty }
    }
}

/// A JSON string literal.
func jsonString(_ text: String) -> String {
    let data = try! JSONSerialization.data(withJSONObject: [text], options: [.withoutEscapingSlashes])
    return String(decoding: data.dropFirst().dropLast(), as: UTF8.self)
}
