// caption-bench video: training throughput of the video autoencoder (sequences/s), the Swift half of
// scripts/bench.sh's `video` section (the PyTorch half is scripts/video_reference.py's `bench`).
import Foundation
import NN
import TensorCore
import Video

/// `caption-bench video [--model NAME] [--batch B] [--steps N] [--repeats R] [--label L] [key=value ...]`
///
/// Times full training steps (zero grads, forward, backward, clip by norm, Adam) on Moving-MNIST-like
/// batches drawn before the clock starts, and reports the best of `repeats` runs of `steps` steps. `NAME`
/// selects a preset (see `videoBenchPresets`); `key=value` pairs override its fields (hidden=, embedding=,
/// layers=, cell=, reconstruction=, future=, bidirectional=, readout=).
func benchVideo(_ args: [String]) {
    var model = "shipped", batch = 16, steps = 5, repeats = 3, label = "train"
    var overrides: [String: String] = [:]
    var i = 0
    while i < args.count {
        switch args[i] {
        case "--model": model = args[i + 1]; i += 2
        case "--batch": batch = Int(args[i + 1])!; i += 2
        case "--steps": steps = Int(args[i + 1])!; i += 2
        case "--repeats": repeats = Int(args[i + 1])!; i += 2
        case "--label": label = args[i + 1]; i += 2
        default:
            let kv = args[i].split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2 else { videoBenchUsage("unknown argument \(args[i])") }
            overrides[kv[0]] = kv[1]; i += 1
        }
    }
    guard var config = videoBenchPresets[model] else { videoBenchUsage("unknown model \(model)") }
    for (key, value) in overrides {
        switch key {
        case "hidden": config.hiddenSize = Int(value)!
        case "embedding": config.embeddingSize = Int(value)!
        case "layers": config.layers = Int(value)!
        case "cell": config.cell = VideoModelConfig.CellKind(rawValue: value)!
        case "reconstruction": config.reconstruction = VideoModelConfig.DecoderKind(rawValue: value)!
        case "future": config.future = VideoModelConfig.DecoderKind(rawValue: value)!
        case "bidirectional": config.bidirectional = value == "1" || value == "true"
        case "readout": config.readout = VideoModelConfig.ReadoutKind(rawValue: value)!
        default: videoBenchUsage("unknown override \(key)")
        }
    }
    let autoencoder = try! VideoAutoencoder(config: config)
    autoencoder.initialize(seed: 1)
    // Sequences drawn beforehand (PyTorch's side times its steps on a tensor made before the clock starts too);
    // each step still converts its batch from bytes.
    let generator = MovingObjects(seed: 99), count = batch * (steps + 1)
    let data = VideoDataset(dimension: generator.size * generator.size, names: (0..<count).map { "synthetic:\($0)" },
                            byteSequences: (0..<count).map { Array(generator.sequence($0).frames.joined()) })
    let trainer = try! VideoTrainer(model: autoencoder, data: data,
                                    options: VideoTrainingOptions(batchSize: batch, steps: 1_000_000, clipNorm: 100))
    trainer.step()  // warm-up: first-touch allocations, OpenBLAS buffers
    var best = Double.infinity
    for _ in 0..<repeats {
        let t0 = now()
        for _ in 0..<steps { trainer.step() }
        best = min(best, (now() - t0) / Double(steps))
    }
    emit(["bench": "video_train", "model": model, "mode": label, "batch": batch, "threads": Threads.count,
          "parameters": autoencoder.parameterCount, "seconds_per_step": best, "sequences_per_s": Double(batch) / best])
}

/// Prints what was wrong and the usage line, and exits with status 2.
private func videoBenchUsage(_ problem: String) -> Never {
    FileHandle.standardError.write(Data("""
        caption-bench video: \(problem)
        usage: caption-bench video [--model \(videoBenchPresets.keys.sorted().joined(separator: "|"))] [--batch B] [--steps N] \
        [--repeats R] [--label L] [hidden=|embedding=|layers=|cell=|reconstruction=|future=|bidirectional=|readout=VALUE ...]

        """.utf8))
    exit(2)
}

/// The benchmarked configurations: `shipped` is weights/video's architecture (H = 512, E = 256, convolutional
/// readouts); `linear` the same with linear readouts (the previous shipped model); `conditional` the ablation's
/// 256-wide composite model with conditional decoders.
let videoBenchPresets: [String: VideoModelConfig] = [
    "shipped": VideoModelConfig(hiddenSize: 512, embeddingSize: 256, reconstruction: .unconditioned, future: .unconditioned,
                                readout: .conv),
    "linear": VideoModelConfig(hiddenSize: 512, embeddingSize: 256, reconstruction: .unconditioned, future: .unconditioned),
    "conditional": VideoModelConfig(hiddenSize: 256, embeddingSize: 256, reconstruction: .conditional, future: .conditional),
]
