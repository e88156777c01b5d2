import Foundation
import Imaging
import NN
import TensorCore
import TestSupport
@testable import Vision
import XCTest

/// Strict weight loading, config parsing, architecture inference, and the feature-extraction facade.
final class LoadingTests: XCTestCase {
    var tmp: URL!

    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("vision-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: tmp)
    }

    /// The narrow ResNet-18 fixture's tensors under torchvision names, edited by `edit`, written to a file.
    func resnet18File(_ edit: (inout [String: Tensor]) -> Void = { _ in }, int64 extra: [String: [Int64]] = [:]) throws -> String {
        let src = try EncoderParityTests.weights("resnet18_w4_tutorial")
        var tensors: [String: Tensor] = [:]
        for name in src.names where !name.hasSuffix("num_batches_tracked") {
            tensors[TensorNaming.tutorial.canonical(name)!] = try src.tensor(name)
        }
        edit(&tensors)
        var w = SafeTensorsWriter()
        for (k, v) in tensors { w.add(k, v) }
        for (k, v) in extra { w.add(k, shape: v.count == 1 ? [] : [v.count], int64: v) }
        let path = tmp.appendingPathComponent("w.safetensors").path
        try w.write(to: path)
        return path
    }

    func loadError(_ path: String, naming: TensorNaming? = nil) -> String? {
        let encoder = Encoder(.resnet(depth: 18, width: 4))
        do {
            try encoder.load(from: try SafeTensorsFile(path: path), naming: naming)
            return nil
        } catch {
            return "\(error)"
        }
    }

    func testTorchvisionNamesLoadAndMatchTutorialNames() throws {
        let path = try resnet18File(int64: ["bn1.num_batches_tracked": [7], "layer1.0.bn1.num_batches_tracked": [7]])
        XCTAssertNil(loadError(path))
        let a = Encoder(.resnet(depth: 18, width: 4)), b = Encoder(.resnet(depth: 18, width: 4))
        try a.load(from: try SafeTensorsFile(path: path))
        try b.load(from: try EncoderParityTests.weights("resnet18_w4_tutorial"))
        XCTAssertEqual(Array(UnsafeBufferPointer(start: a.parameters.values, count: a.parameters.count)),
                       Array(UnsafeBufferPointer(start: b.parameters.values, count: b.parameters.count)))
    }

    func testMissingTensorIsNamed() throws {
        let path = try resnet18File { $0["layer3.1.bn2.running_var"] = nil }
        let message = try XCTUnwrap(loadError(path))
        XCTAssertEqual(message, "\(path): missing tensor layer3.1.bn2.running_var for resnet18 (width 4)")
    }

    func testUnexpectedTensorIsNamed() throws {
        let path = try resnet18File { $0["fc.weight"] = Tensor(shape: [10, 32]) }
        XCTAssertEqual(loadError(path), "\(path): unexpected tensor fc.weight for resnet18 (width 4)")
    }

    func testWrongShapeNamesTensorAndBothShapes() throws {
        let path = try resnet18File { $0["layer2.0.conv2.weight"] = Tensor(shape: [8, 8, 1, 3]) }
        XCTAssertEqual(loadError(path),
                       "\(path): tensor layer2.0.conv2.weight has shape [8, 8, 1, 3], expected [8, 8, 3, 3] for resnet18 (width 4)")
    }

    func testIntegerWeightsAreRejected() throws {
        let path = try resnet18File({ $0["bn1.running_mean"] = nil }, int64: ["bn1.running_mean": [1, 2, 3, 4]])
        XCTAssertEqual(loadError(path), "\(path): tensor bn1.running_mean has dtype I64, expected a floating-point type")
    }

    func testWrongNamingReportsMissingTensors() throws {
        let path = try resnet18File()
        let message = try XCTUnwrap(loadError(path, naming: .tutorial))
        XCTAssertTrue(message.contains("missing tensor conv1.weight for resnet18 (width 4) (tutorial naming) (and "), message)
    }

    func testArchitectureIsInferredFromABareFile() throws {
        let path = try resnet18File { $0["fc.weight"] = Tensor(shape: [10, 32]); $0["fc.bias"] = Tensor(shape: [10]) }
        let (encoder, config) = try Encoder.load(path: path)
        XCTAssertEqual(encoder.architecture, .resnet(depth: 18, width: 4))
        XCTAssertEqual(config.pool, GridSize(height: 14, width: 14))
        XCTAssertEqual(config.preprocessing.outputWidth, 224)
        let (_, naming) = try ArchitectureInference.infer(try EncoderParityTests.weights("resnet18_w4_tutorial"))
        XCTAssertEqual(naming, .tutorial)
        XCTAssertEqual(try ArchitectureInference.infer(try EncoderParityTests.weights("resnet50_w4")).0, .resnet(depth: 50, width: 4))
        XCTAssertEqual(try ArchitectureInference.infer(try EncoderParityTests.weights("vgg16_bn_w2")).0,
                       .vgg(depth: 16, batchNorm: true, width: 2))
        XCTAssertEqual(try ArchitectureInference.infer(try EncoderParityTests.weights("vgg16_w2")).0,
                       .vgg(depth: 16, batchNorm: false, width: 2))
    }

    func testSaveThenLoadRoundTrips() throws {
        let a = Encoder(.compact(CompactNetSpec(channels: [4, 8], strides: [2, 2])))
        var rng = RNG(seed: 9)
        a.initialize(rng: &rng)
        let path = tmp.appendingPathComponent("c.safetensors").path
        try a.save(to: path)
        let file = try SafeTensorsFile(path: path)
        XCTAssertEqual(file.info("layers.1.bn.num_batches_tracked")?.dtype, .I64)
        let b = Encoder(.compact(CompactNetSpec(channels: [4, 8], strides: [2, 2])))
        try b.load(from: file)
        let x = Tensor.randn([1, 3, 16, 16], rng: &rng)
        XCTAssertEqual(a.forward(images: x), b.forward(images: x))
    }

    func testReleasingTheTrainingWeightsKeepsInferenceAndFreesTheConvolutions() {
        // 64→64 3×3 convolutions: 147 KB each, so whole pages inside them are handed back.
        let e = Encoder(.compact(CompactNetSpec(channels: [64, 64, 64], strides: [2, 1, 1])))
        var rng = RNG(seed: 4)
        e.initialize(rng: &rng)
        let x = Tensor.randn([2, 3, 20, 20], rng: &rng)
        let before = e.forward(images: x)
        e.releaseTrainingWeights()
        XCTAssertTrue(e.trainingWeightsReleased)
        XCTAssertEqual(e.forward(images: x), before)
        let w = e.parameters.tensor(e.parameters.layout.param(named: "layers.1.conv.weight")!)
        XCTAssertGreaterThan(w.storage.filter { $0 == 0 }.count, w.count / 2, "the training copy reads as zero")
        e.releaseTrainingWeights()  // idempotent
        XCTAssertEqual(e.forward(images: x), before)
    }

    // MARK: config.json

    func writeConfig(_ json: String) throws -> String {
        let path = tmp.appendingPathComponent("config.json").path
        try json.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func configError(_ json: String) throws -> String {
        let path = try writeConfig(json)
        do { _ = try EncoderConfig(contentsOf: path); return "no error" } catch { return "\(error)" }
    }

    func testConfigParsesTheConverterLayout() throws {
        let path = try writeConfig("""
        {"encoder": {"arch": "resnet101", "weights": "encoder.safetensors", "naming": "tutorial", "pool": [14, 14],
                     "output": "layer4"},
         "preprocess": {"size": 256, "resize": "bilinear", "center_crop": null,
                        "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
         "decoder": {"type": "attention-lstm"}}
        """)
        let c = try EncoderConfig(contentsOf: path)
        XCTAssertEqual(c.architecture, .resnet(depth: 101))
        XCTAssertEqual(c.naming, .tutorial)
        XCTAssertEqual(c.pool, GridSize(height: 14, width: 14))
        XCTAssertEqual(c.preprocessing, Preprocessing(resizeWidth: 256, resizeHeight: 256))
        let vgg = try EncoderConfig(contentsOf: try writeConfig("""
        {"encoder": {"arch": "vgg19_bn", "pool": null, "output": "conv5_4"}, "preprocess": {"size": 256, "center_crop": 224}}
        """))
        XCTAssertEqual(vgg.architecture, .vgg(depth: 19, batchNorm: true))
        XCTAssertNil(vgg.pool)
        XCTAssertEqual(vgg.preprocessing.outputWidth, 224)
    }

    func testConfigErrorsAreOneLineAndNameTheKey() throws {
        let p = tmp.appendingPathComponent("config.json").path
        XCTAssertEqual(try configError(#"{"encoder": {"arch": "resnet19"}, "preprocess": {"size": 224}}"#),
                       "\(p): encoder.arch: unknown architecture \"resnet19\" (expected resnet18/34/50/101/152, vgg16[_bn], vgg19[_bn] or compact)")
        XCTAssertEqual(try configError(#"{"encoder": {"arch": "resnet18", "pool": "big"}, "preprocess": {"size": 224}}"#),
                       "\(p): encoder.pool: expected [H, W], a size, or null")
        XCTAssertEqual(try configError(#"{"encoder": {"arch": "resnet18"}, "preprocess": {"size": true}}"#),
                       "\(p): preprocess.size: expected a positive integer")
        XCTAssertEqual(try configError(#"{"encoder": {"arch": "resnet18"}, "preprocess": {"size": 224, "resize": "bicubic"}}"#),
                       "\(p): preprocess.resize: only \"bilinear\" is supported")
        XCTAssertEqual(try configError(#"{"encoder": {"arch": "resnet18", "output": "layer3"}, "preprocess": {"size": 224}}"#),
                       "\(p): encoder.output: layer3 is not supported for resnet18 (expected layer4)")
        XCTAssertEqual(try configError(#"{"encoder": {"arch": "compact", "channels": [8, 16], "strides": [2]}, "preprocess": {"size": 96}}"#),
                       "\(p): encoder.channels has 2 entries but encoder.strides 1")
        XCTAssertEqual(try configError(#"{"encoder": {"arch": "resnet18"}, "preprocess": {"size": 224, "std": [1, 0, 1]}}"#),
                       "\(p): preprocess: std values must be finite and non-zero")
        XCTAssertEqual(try configError("[1, 2]"), "\(p): top level: expected an object, found an array")
    }

    func testModelFolderErrors() throws {
        do { _ = try Encoder.load(path: tmp.path); XCTFail("loaded an empty folder") } catch {
            XCTAssertEqual("\(error)", "\(tmp.path): not a model folder (no config.json)")
        }
        let missing = tmp.appendingPathComponent("nope").path
        do { _ = try Encoder.load(path: missing); XCTFail("loaded a missing path") } catch {
            XCTAssertEqual("\(error)", "\(missing): no such file or directory")
        }
        // Four 2×2 max pools before conv5: an 8×8 input vanishes.
        _ = try writeConfig(#"{"encoder": {"arch": "vgg16", "width": 2}, "preprocess": {"size": 8}}"#)
        try FileManager.default.copyItem(atPath: Fixtures.path("encoders/vgg16_w2.weights.safetensors"),
                                         toPath: tmp.appendingPathComponent("encoder.safetensors").path)
        do { _ = try Encoder.load(path: tmp.path); XCTFail("accepted an 8×8 input for VGG") } catch {
            XCTAssertEqual("\(error)", "\(tmp.path): a 8×8 input is too small for vgg16 (width 2)")
        }
    }

    // MARK: Feature extraction

    /// A compact model folder end to end: decode the PNG, Pillow-bilinear resize 57×43 → 40×40, centre crop 32,
    /// normalise with the folder's mean/std, encode — against PyTorch/Pillow.
    func testFeatureExtractorMatchesPyTorchOnACompactModelFolder() throws {
        let fx = try FeatureExtractor(weights: Fixtures.path("encoders/compact_model"))
        let r = try fx.extract(path: Fixtures.path("encoders/compact_image.png"))
        let expected = try SafeTensorsFile(path: Fixtures.path("encoders/compact_expected.safetensors"))
        XCTAssertEqual(r.image.pixels, try expected.uint8("image"))
        XCTAssertEqual([r.image.height, r.image.width], Array(expected.info("image")!.shape.prefix(2)))
        assertClose(r.input, try expected.tensor("input"), rtol: 1e-6, atol: 1e-6, "input")
        EncoderParityTests.assertRelativeClose(r.features, try expected.tensor("features"), "features")
        XCTAssertEqual(r.features.shape, [16, 32])
    }

    /// A real torchvision resnet18 state_dict, converted by scripts/convert_checkpoint.py, loaded and run on an
    /// image. The fixture is 45 MB and not committed: `scripts/make_encoder_fixtures.py` writes it to
    /// /tmp/caption-encoder-fixtures (or `$CAPTION_LARGE_FIXTURES`); the test is skipped without it.
    func testConvertedTorchvisionResNet18MatchesPyTorch() throws {
        let dir = ProcessInfo.processInfo.environment["CAPTION_LARGE_FIXTURES"] ?? "/tmp/caption-encoder-fixtures"
        let model = dir + "/resnet18_model"
        try XCTSkipUnless(FileManager.default.fileExists(atPath: model + "/config.json"),
                          "large fixture absent: run scripts/make_encoder_fixtures.py")
        let fx = try FeatureExtractor(weights: model)
        XCTAssertEqual(fx.encoder.architecture, .resnet(depth: 18))
        let r = try fx.extract(path: dir + "/photo.png")
        let expected = try SafeTensorsFile(path: dir + "/resnet18_expected.safetensors")
        assertClose(r.input, try expected.tensor("input"), rtol: 1e-6, atol: 1e-6, "input")
        XCTAssertEqual(r.features.shape, [196, 512])
        EncoderParityTests.assertRelativeClose(r.features, try expected.tensor("features"), "resnet18 features")
    }
}
