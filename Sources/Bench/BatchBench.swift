// `caption-bench batch-compute WEIGHTS DIR [BATCH] [BEAM]`: the pure compute rate that scripts/bench.sh's `batch`
// section holds `caption batch` against (the CLI hides decoding behind this, so it should come close to it).
import Captioning
import Foundation
import Imaging
import TensorCore

/// Encoder + beam search over every image of DIR, preloaded: the files are decoded and preprocessed before the
/// clock starts, then timed batch by batch exactly as `caption batch` runs them (BATCH images per encoder pass and
/// per search, beam BEAM, the model's max_length). One pass over all images: no warm-up needed at these counts.
func benchBatchCompute(_ args: [String]) {
    guard args.count >= 2 else {
        FileHandle.standardError.write(Data("usage: caption-bench batch-compute WEIGHTS DIR [BATCH] [BEAM]\n".utf8))
        exit(2)
    }
    let batch = args.count > 2 ? Int(args[2]) ?? 16 : 16, beam = args.count > 3 ? Int(args[3]) ?? 3 : 3
    let captioner: Captioner
    do { captioner = try Captioner(modelFolder: args[0]) } catch { fatalError("\(error)") }
    let files = ((try? FileManager.default.contentsOfDirectory(atPath: args[1])) ?? []).sorted()
        .map { (args[1] as NSString).appendingPathComponent($0) }
    let inputs = files.compactMap { try? captioner.preprocessing.tensor(captioner.extractor.decoder.decode(path: $0)) }
    let cpu0 = processCPUSeconds(), t0 = now()
    var words = 0
    for start in stride(from: 0, to: inputs.count, by: batch) {
        let chunk = Array(inputs[start..<min(start + batch, inputs.count)])
        words += captioner.caption(inputs: chunk, beam: beam).reduce(0) { $0 + $1.tokens.count }
    }
    let seconds = now() - t0, cpu = processCPUSeconds() - cpu0
    emit(["bench": "batch_compute", "images": inputs.count, "batch": batch, "beam": beam, "seconds": seconds,
          "cpu_seconds": cpu, "images_per_s": Double(inputs.count) / seconds, "images_per_cpu_s": Double(inputs.count) / cpu,
          "mean_words": Double(words) / Double(max(1, inputs.count)), "threads": Threads.count])
}
