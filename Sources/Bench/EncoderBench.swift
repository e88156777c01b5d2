// `caption-bench encoder ARCH SIZE BATCH` and `caption-bench encoder-memory ARCH SIZE BATCH`: the Swift half
// of scripts/bench.sh's `encoder` section (the PyTorch half is scripts/bench_reference.py).
import Foundation
import NN
import TensorCore
import Vision

/// A randomly initialised encoder (torchvision init; random BatchNorm statistics so folding is not trivial).
func benchEncoderModel(_ name: String) -> Encoder {
    guard let arch = Architecture(name: name) else {
        FileHandle.standardError.write(Data("caption-bench: unknown architecture \(name)\n".utf8))
        exit(2)
    }
    let encoder = Encoder(arch)
    var rng = RNG(seed: 0)
    encoder.initialize(rng: &rng)
    let p = encoder.parameters
    for param in p.layout.params where param.name.hasSuffix("running_var") {
        for i in 0..<param.count { p.value(param)[i] = rng.uniform(0.5, 2) }
    }
    encoder.invalidateInferenceWeights()
    return encoder
}

/// Images per second of the CNN body (inference path: folded BatchNorm, fused ReLU; no pooling/permute).
func benchEncoder(_ args: [String]) {
    guard args.count >= 3, let size = Int(args[1]), let batch = Int(args[2]) else {
        FileHandle.standardError.write(Data("usage: caption-bench encoder ARCH SIZE BATCH [REPEATS]\n".utf8))
        exit(2)
    }
    let encoder = benchEncoderModel(args[0])
    var rng = RNG(seed: 1)
    let x = Tensor.randn([batch, 3, size, size], rng: &rng)
    let flops = encoder.flops(batch: batch, height: size, width: size)
    let repeats = args.count > 3 ? Int(args[3]) ?? 3 : (flops > 100_000_000_000 ? 3 : 5)
    var cpu = Double.infinity
    let t = bestTime(repeats: repeats) {
        let c0 = processCPUSeconds()
        _ = encoder.featureMap(images: x)
        cpu = min(cpu, processCPUSeconds() - c0)
    }
    emit(["bench": "encoder", "model": args[0], "size": size, "batch": batch, "seconds": t,
          "images_per_s": Double(batch) / t, "gflops": Double(flops) / t / 1e9, "cpu_seconds": cpu])
}

/// Peak resident memory (VmHWM) of a process that builds the encoder and runs one forward pass, against
/// the budget 2 × weights (parameters + folded copy) + the two largest layer outputs.
func benchEncoderMemory(_ args: [String]) {
    guard args.count >= 3, let size = Int(args[1]), let batch = Int(args[2]) else {
        FileHandle.standardError.write(Data("usage: caption-bench encoder-memory ARCH SIZE BATCH\n".utf8))
        exit(2)
    }
    let baseline = peakRSSBytes()
    let encoder = benchEncoderModel(args[0])
    var rng = RNG(seed: 1)
    let x = Tensor.randn([batch, 3, size, size], rng: &rng)
    encoder.releaseTrainingWeights()  // as the command-line tool does: inference only
    _ = encoder.featureMap(images: x)
    let peak = peakRSSBytes()
    let weights = encoder.parameters.count * 4
    let activations = encoder.layerOutputShapes(batch: batch, height: size, width: size)
        .map { $0.reduce(1, *) * 4 }.sorted(by: >)
    let budget = 2 * weights + activations.prefix(2).reduce(0, +)
    let mb = { (b: Int) in Double(b) / 1_048_576 }
    emit(["bench": "encoder_memory", "model": args[0], "size": size, "batch": batch,
          "peak_rss_mb": mb(peak), "baseline_rss_mb": mb(baseline), "weights_mb": mb(weights),
          "input_mb": mb(x.count * 4), "largest_activations_mb": activations.prefix(2).map(mb),
          "budget_mb": mb(budget), "within_budget": peak <= budget])
}

/// VmHWM from /proc/self/status (Linux), in bytes; 0 where unavailable.
func peakRSSBytes() -> Int {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        let kb = line.split(separator: " ").compactMap { Int($0) }.first ?? 0
        return kb * 1024
    }
    return 0
}

/// Images per second of a training step of the CNN body: training forward (batch-statistics BatchNorm) and
/// backward from a random gradient of the annotations, parameter gradients accumulated.
func benchEncoderTraining(_ args: [String]) {
    guard args.count >= 3, let size = Int(args[1]), let batch = Int(args[2]) else {
        FileHandle.standardError.write(Data("usage: caption-bench encoder-train ARCH SIZE BATCH\n".utf8))
        exit(2)
    }
    let encoder = benchEncoderModel(args[0])
    var rng = RNG(seed: 1)
    let x = Tensor.randn([batch, 3, size, size], rng: &rng)
    let (grid, d) = (encoder.featureMapSize(height: size, width: size), encoder.featureDimension)
    let dA = Tensor.randn([batch, grid.height * grid.width, d], rng: &rng)
    var cpu = Double.infinity
    let t = bestTime(repeats: 3) {
        let c0 = processCPUSeconds()
        let (_, cache) = encoder.forwardTraining(images: x)
        encoder.backward(dA, cache: cache)
        cpu = min(cpu, processCPUSeconds() - c0)
    }
    emit(["bench": "encoder_train", "model": args[0], "size": size, "batch": batch, "seconds": t,
          "images_per_s": Double(batch) / t, "cpu_seconds": cpu])
}

/// User + system CPU time of the whole process so far. With one thread, unlike wall time, it does not depend
/// on what else the machine is running, which makes efficiency comparable on a busy machine.
func processCPUSeconds() -> Double {
    var usage = rusage()
    #if os(Linux)
    getrusage(Int32(RUSAGE_SELF.rawValue), &usage)
    #else
    getrusage(RUSAGE_SELF, &usage)
    #endif
    func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
    return seconds(usage.ru_utime) + seconds(usage.ru_stime)
}
