// `caption-bench train BATCH CAPLEN [teacher|sampled]`: the Swift half of scripts/bench.sh's `train` section (the
// PyTorch half is scripts/bench_reference.py train).
import Captioning
import CaptionTraining
import Foundation
import NN
import TensorCore
import Vision

/// One decoder training step at the tutorial's sizes — L = 196 (14×14), D = 2048, attention/embedding/LSTM 512,
/// V = 9490, dropout 0.5 — on given (random) features, through the trainer's `TrainingStepper`: packed forward,
/// the tutorial's loss (CE + doubly stochastic term), backward, clipping by global norm 5, Adam.
/// BATCH captions whose lengths (`<start>` and `<end>` included) are CAPLEN − 4 … CAPLEN + 4, mean CAPLEN.
/// `sampled`: scheduled sampling at ε = 0.75 (argmax), else teacher forcing. Best of 3 steps after a warm-up.
func benchTrain(_ args: [String]) {
    guard args.count >= 2, let batch = Int(args[0]), let capLen = Int(args[1]), batch >= 1, capLen >= 6 else {
        FileHandle.standardError.write(Data("usage: caption-bench train BATCH CAPLEN [teacher|sampled]\n".utf8))
        exit(2)
    }
    let mode = args.count > 2 ? args[2] : "teacher"
    let vocabSize = 9490
    var spec = ModelSpec()
    spec.architecture = .compact(CompactNetSpec(channels: [2048], strides: [1]))  // only fixes D; features are given
    spec.imageSize = 8
    spec.attentionDim = 512; spec.embedDim = 512; spec.decoderDim = 512; spec.dropout = 0.5
    let vocabulary = Vocabulary(words: (1...(vocabSize - 4)).map { "w\($0)" })
    let model = try! TrainableModel(spec: spec, vocabulary: vocabulary, seed: 0)
    var options = TrainingOptions()
    options.clipping = .norm(5)
    if mode == "sampled" { options.scheduledSampling = ScheduledSampling(kind: .linear, k: 0.75, c: 0) }
    let stepper = TrainingStepper(model: model, options: options)
    var rng = RNG(seed: 0)
    let features = Tensor.uniform([batch, 196, 2048], 0, 1, rng: &rng)
    let captions: [[Int]] = (0..<batch).map { i in
        let n = capLen - 4 + i % 9
        return [vocabulary.startIndex] + (0..<(n - 2)).map { _ in 1 + rng.int(below: vocabSize - 4) } + [vocabulary.endIndex]
    }
    var step = 0
    let t = bestTime(repeats: 3) {
        _ = stepper.step(images: features, slot: Array(0..<batch), captions: captions, stepIndex: step)
        step += 1
    }
    emit(["bench": "train_step", "mode": mode, "batch": batch, "size": capLen, "seconds": t,
          "captions_per_s": Double(batch) / t])
}
