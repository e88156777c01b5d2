import CaptionSupport
import ArgumentParser
import Foundation
import Imaging
import TensorCore
import Vision

/// `caption features IMAGE --out FILE.safetensors [--weights DIR]`
struct FeaturesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "features",
        abstract: "Write an image's CNN annotation vectors (and the pixels and network input they come from).",
        discussion: """
            Writes a safetensors file with three tensors: `image` (U8, H×W×3, the decoded RGB pixels before any \
            resizing), `input` (F32, 3×S×S, the normalised network input) and `features` (F32, L×D, the \
            annotation vectors a_1..a_L in row-major order of the H'×W' grid). --weights takes a model folder \
            or a bare torchvision ResNet/VGG safetensors file. The file is written atomically.
            """
    )

    @Argument(help: "Image file (JPEG or PNG).")
    var image: String

    @Option(name: .long, help: "Output .safetensors file.")
    var out: String

    @Option(name: .long, help: "Model folder or encoder safetensors file (default: the shipped model).")
    var weights: String?

    @OptionGroup var log: LogOptions

    func run() throws {
        log.apply()
        let modelPath = try WeightsLocation.resolve(weights)
        let extractor = try FeatureExtractor(weights: modelPath)
        extractor.encoder.releaseTrainingWeights()
        let result = try extractor.extract(path: image)
        var writer = SafeTensorsWriter()
        writer.add("image", shape: [result.image.height, result.image.width, 3], uint8: result.image.pixels)
        writer.add("input", result.input)
        writer.add("features", result.features)
        writer.metadata = ["arch": extractor.encoder.architecture.name, "source": (image as NSString).lastPathComponent]
        try writer.write(to: out)
        let grid = extractor.encoder.gridSize(height: result.input.shape[1], width: result.input.shape[2])
        Log.info("\(out): features \(result.features.shape[0])×\(result.features.shape[1]) "
                 + "(\(grid.height)×\(grid.width) grid, \(extractor.encoder.architecture.name))")
    }
}
