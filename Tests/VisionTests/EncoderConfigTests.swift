import Foundation
import Imaging
@testable import Vision
import XCTest

/// Every form of `config.json`'s `encoder` and `preprocess` sections that is accepted, with its defaults, and the
/// one-line error for each kind of bad value (`writeConfig` and `configError` are LoadingTests' helpers).
extension LoadingTests {
    func config(_ json: String) throws -> EncoderConfig { try EncoderConfig(contentsOf: try writeConfig(json)) }

    func testConfigDefaultsAndEveryAcceptedForm() throws {
        let minimal = try config(#"{"encoder": {"arch": "resnet18"}, "preprocess": {"size": 224}}"#)
        XCTAssertEqual(minimal, EncoderConfig(architecture: .resnet(depth: 18), weights: "encoder.safetensors", naming: nil,
                                              pool: nil, preprocessing: Preprocessing(resizeWidth: 224, resizeHeight: 224)))
        // Every optional key given; nulls read as absent; whole numbers may be written as floats; other keys ignored.
        let full = try config("""
        {"encoder": {"arch": "resnet50", "width": 8.0, "weights": "w.safetensors", "naming": "torchvision", "pool": 7,
                     "output": null, "channels": "ignored unless compact", "extra": 1},
         "preprocess": {"size": 6.4e1, "resize": null, "center_crop": 56, "mean": [0, 0.5, 1], "std": [1, 2, 3]},
         "decoder": {"type": "attention-lstm"}}
        """)
        XCTAssertEqual(full, EncoderConfig(architecture: .resnet(depth: 50, width: 8), weights: "w.safetensors",
                                           naming: .torchvision, pool: GridSize(height: 7, width: 7),
                                           preprocessing: Preprocessing(resizeWidth: 64, resizeHeight: 64, cropWidth: 56,
                                                                        cropHeight: 56, mean: [0, 0.5, 1], std: [1, 2, 3])))
        let nulls = try config("""
        {"encoder": {"arch": "vgg16", "width": null, "weights": null, "naming": null, "pool": null, "output": "features"},
         "preprocess": {"size": 32, "center_crop": null, "mean": null, "std": null}}
        """)
        XCTAssertEqual(nulls, EncoderConfig(architecture: .vgg(depth: 16, batchNorm: false), naming: nil, pool: nil,
                                            preprocessing: Preprocessing(resizeWidth: 32, resizeHeight: 32)))
        XCTAssertEqual(try config(#"{"encoder": {"arch": "compact", "output": "layers"}, "preprocess": {"size": 32}}"#).architecture,
                       .compact(CompactNetSpec()))
        let compact = try config("""
        {"encoder": {"arch": "compact", "width": 3, "channels": [8, 16.0], "strides": [2, 1], "pool": [2, 3]},
         "preprocess": {"size": 32, "resize": "bilinear"}}
        """)
        XCTAssertEqual(compact.architecture, .compact(CompactNetSpec(channels: [8, 16], strides: [2, 1])))
        XCTAssertEqual(compact.pool, GridSize(height: 2, width: 3))
        XCTAssertEqual(try config(#"{"encoder": {"arch": "vgg19_bn", "output": "conv5"}, "preprocess": {"size": 32}}"#).architecture,
                       .vgg(depth: 19, batchNorm: true))
    }

    func testEveryKindOfBadConfigValueIsNamed() throws {
        let p = tmp.appendingPathComponent("config.json").path
        let pre = #""preprocess": {"size": 224}"#
        let cases: [(String, String)] = [
            ("{}", #"no "encoder" object"#),
            (#"{"encoder": 5, \#(pre)}"#, #"no "encoder" object"#),
            (#"{"encoder": null, \#(pre)}"#, #"no "encoder" object"#),
            (#"{"encoder": {}, \#(pre)}"#, "encoder.arch: missing or not a string"),
            (#"{"encoder": {"arch": 18}, \#(pre)}"#, "encoder.arch: missing or not a string"),
            (#"{"encoder": {"arch": "resnet18", "width": 0}, \#(pre)}"#, "encoder.width: expected a positive integer"),
            (#"{"encoder": {"arch": "resnet18", "width": -8}, \#(pre)}"#, "encoder.width: expected a positive integer"),
            (#"{"encoder": {"arch": "resnet18", "width": 1.5}, \#(pre)}"#, "encoder.width: expected a positive integer"),
            (#"{"encoder": {"arch": "resnet18", "width": true}, \#(pre)}"#, "encoder.width: expected a positive integer"),
            (#"{"encoder": {"arch": "resnet18", "width": "64"}, \#(pre)}"#, "encoder.width: expected a positive integer"),
            (#"{"encoder": {"arch": "compact", "channels": []}, \#(pre)}"#, "encoder.channels: expected a list of positive integers"),
            (#"{"encoder": {"arch": "compact", "channels": 8}, \#(pre)}"#, "encoder.channels: expected a list of positive integers"),
            (#"{"encoder": {"arch": "compact", "channels": [8, 0]}, \#(pre)}"#, "encoder.channels: expected a positive integer"),
            (#"{"encoder": {"arch": "compact", "strides": [true]}, \#(pre)}"#, "encoder.strides: expected a positive integer"),
            (#"{"encoder": {"arch": "resnet18", "output": 5}, \#(pre)}"#,
             "encoder.output: 5 is not supported for resnet18 (expected layer4)"),
            (#"{"encoder": {"arch": "vgg16", "output": "layer4"}, \#(pre)}"#,
             "encoder.output: layer4 is not supported for vgg16 (expected conv5_4 or conv5_3 or conv5 or features)"),
            (#"{"encoder": {"arch": "compact", "output": "layer4"}, \#(pre)}"#,
             "encoder.output: layer4 is not supported for compact (expected layers or features)"),
            (#"{"encoder": {"arch": "resnet18", "naming": "keras"}, \#(pre)}"#, #"encoder.naming: expected "torchvision" or "tutorial""#),
            (#"{"encoder": {"arch": "resnet18", "naming": 1}, \#(pre)}"#, #"encoder.naming: expected "torchvision" or "tutorial""#),
            (#"{"encoder": {"arch": "resnet18", "pool": [1, 2, 3]}, \#(pre)}"#, "encoder.pool: expected [H, W], a size, or null"),
            (#"{"encoder": {"arch": "resnet18", "pool": [0, 2]}, \#(pre)}"#, "encoder.pool: expected [H, W], a size, or null"),
            (#"{"encoder": {"arch": "resnet18", "pool": 0}, \#(pre)}"#, "encoder.pool: expected [H, W], a size, or null"),
            (#"{"encoder": {"arch": "resnet18", "pool": true}, \#(pre)}"#, "encoder.pool: expected [H, W], a size, or null"),
            (#"{"encoder": {"arch": "resnet18"}}"#, #"no "preprocess" object"#),
            (#"{"encoder": {"arch": "resnet18"}, "preprocess": []}"#, #"no "preprocess" object"#),
            (#"{"encoder": {"arch": "resnet18"}, "preprocess": {}}"#, "preprocess.size: missing"),
            (#"{"encoder": {"arch": "resnet18"}, "preprocess": {"size": null}}"#, "preprocess.size: missing"),
            (#"{"encoder": {"arch": "resnet18"}, "preprocess": {"size": 0}}"#, "preprocess.size: expected a positive integer"),
            (#"{"encoder": {"arch": "resnet18"}, "preprocess": {"size": 224, "resize": 1}}"#,
             #"preprocess.resize: only "bilinear" is supported"#),
            (#"{"encoder": {"arch": "resnet18"}, "preprocess": {"size": 224, "center_crop": 0}}"#,
             "preprocess.center_crop: expected a positive integer"),
            (#"{"encoder": {"arch": "resnet18"}, "preprocess": {"size": 224, "mean": [1, 2]}}"#,
             "preprocess.mean: expected 3 numbers (R, G, B)"),
            (#"{"encoder": {"arch": "resnet18"}, "preprocess": {"size": 224, "mean": [1, 2, true]}}"#,
             "preprocess.mean: expected 3 numbers (R, G, B)"),
            (#"{"encoder": {"arch": "resnet18"}, "preprocess": {"size": 224, "std": "x"}}"#,
             "preprocess.std: expected 3 numbers (R, G, B)"),
            ("5", "top level: expected an object, found a number"),
            // Used to trap (a null list element) or to be ignored (a non-string weights file).
            (#"{"encoder": {"arch": "compact", "channels": [8, null]}, \#(pre)}"#, "encoder.channels: expected a positive integer"),
            (#"{"encoder": {"arch": "resnet18", "pool": [null, 2]}, \#(pre)}"#, "encoder.pool: expected [H, W], a size, or null"),
            (#"{"encoder": {"arch": "resnet18"}, "preprocess": {"size": 224, "std": [1, null, 1]}}"#,
             "preprocess.std: expected 3 numbers (R, G, B)"),
            (#"{"encoder": {"arch": "resnet18", "weights": 5}, \#(pre)}"#, "encoder.weights: expected a string"),
            // Malformed JSON says so, with Foundation's description of where.
            (#"{"encoder": x}"#, "malformed JSON: invalid value at line 1, column 13"),
            (#"{"encoder": {"#, "malformed JSON: unexpected end of file during JSON parse"),
        ]
        for (json, problem) in cases {
            XCTAssertEqual(try configError(json), "\(p): \(problem)", json)
        }
        let missing = tmp.appendingPathComponent("none.json").path
        XCTAssertThrowsError(try EncoderConfig(contentsOf: missing)) { error in
            XCTAssertEqual("\(error)", "\(missing): no such file")
        }
    }
}
