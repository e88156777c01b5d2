// caption-bench: the Swift half of scripts/bench.sh. Each mode prints one JSON object per
// measurement on stdout; the script runs the PyTorch/Pillow/numpy half in the same run and
// prints the ratios. Timings use the best of several repeats after a warm-up.
import Foundation
import TensorCore

func now() -> Double { Date().timeIntervalSinceReferenceDate }

/// Best wall time of `repeats` runs of `body` after one warm-up run.
func bestTime(repeats: Int, _ body: () -> Void) -> Double {
    body()
    var best = Double.infinity
    for _ in 0..<repeats {
        let t0 = now()
        body()
        best = min(best, now() - t0)
    }
    return best
}

func emit(_ fields: [String: Any]) {
    let data = try! JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys])
    print(String(decoding: data, as: UTF8.self))
}

/// SGEMM C = A·B for square n×n matrices through the project's wrapper.
func benchSGEMM(sizes: [Int]) {
    var rng = RNG(seed: 0)
    for n in sizes {
        let a = Tensor.randn([n, n], rng: &rng), b = Tensor.randn([n, n], rng: &rng)
        var c = Tensor(shape: [n, n])
        let repeats = n <= 512 ? 20 : (n <= 1024 ? 8 : 3)
        let t = a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                c.withUnsafeMutableBufferPointer { pc in
                    bestTime(repeats: repeats) {
                        sgemm(m: n, n: n, k: n, a: pa.baseAddress!, b: pb.baseAddress!, c: pc.baseAddress!)
                    }
                }
            }
        }
        emit(["bench": "sgemm", "n": n, "seconds": t, "gflops": 2.0 * Double(n * n * n) / t / 1e9])
    }
}

let args = Array(CommandLine.arguments.dropFirst())
switch args.first {
case "sgemm":
    benchSGEMM(sizes: args.dropFirst().compactMap { Int($0) })
case "decode":
    benchDecode(Array(args.dropFirst()))
case "encoder":
    benchEncoder(Array(args.dropFirst()))
case "encoder-memory":
    benchEncoderMemory(Array(args.dropFirst()))
case "encoder-train":
    benchEncoderTraining(Array(args.dropFirst()))
case "decoder":
    benchDecoder(Array(args.dropFirst()))
case "train":
    HeapPolicy.retainFreedMemory()  // as `caption train` does
    benchTrain(Array(args.dropFirst()))
case "video":
    HeapPolicy.retainFreedMemory()  // as `caption video train` does
    benchVideo(Array(args.dropFirst()))
case "batch-compute":
    benchBatchCompute(Array(args.dropFirst()))
default:
    FileHandle.standardError.write(Data("usage: caption-bench sgemm N... | encoder ARCH SIZE BATCH | encoder-memory|encoder-train ARCH SIZE BATCH\n".utf8))
    exit(2)
}
