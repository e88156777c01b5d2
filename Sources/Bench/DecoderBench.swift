// `caption-bench decoder BEAM STEPS [IMAGES]`: the Swift half of scripts/bench.sh's `decoder` section (the PyTorch
// half is scripts/bench_reference.py decoder, the tutorial's caption_image_beam_search).
import Captioning
import Foundation
import NN
import TensorCore

/// Decoding time per image at the tutorial's sizes: L = 196 (14×14), D = 2048, attention/embedding/LSTM 512,
/// V = 9490, random weights (the tutorial's initialisation), random annotations. No `<end>` token, so every
/// search runs exactly STEPS steps (maxLength = STEPS − 1 words plus the final step), as the reference does.
/// With `f16`, the step matrices are rounded to half precision and read as halves (`HalfStepWeights`), as
/// for a model stored in F16. Timed: encoder_att projection, initial state and the whole search, for IMAGES images stepped together
/// (the reference runs them one after another).
func benchDecoder(_ args: [String]) {
    guard args.count >= 2, let beam = Int(args[0]), let steps = Int(args[1]), beam >= 1, steps >= 2,
          args.count < 4 || args[3] == "f16" else {
        FileHandle.standardError.write(Data("usage: caption-bench decoder BEAM STEPS [IMAGES [f16]]\n".utf8))
        exit(2)
    }
    let images = args.count > 2 ? Int(args[2]) ?? 1 : 1
    let useHalf = args.count > 3
    let config = AttentionDecoderConfig(encoderDim: 2048, attentionDim: 512, embedDim: 512, decoderDim: 512, vocabSize: 9490)
    var layout = ParameterLayout()
    let decoder = AttentionDecoder(config: config, layout: &layout)
    let p = Parameters(layout)
    var rng = RNG(seed: 0)
    decoder.initialize(p, rng: &rng)
    // f16: the model as an F16 file would give it (step matrices rounded to halves), decoded from the halves.
    if useHalf { decoder.roundStepMatricesToHalf(p) }
    let half = useHalf ? HalfStepWeights(decoder, p)! : nil
    let screen = useHalf ? nil : ArgmaxScreen(decoder, p)  // as `Captioner` sets up a float model
    let features = Tensor.uniform([images, 196, 2048], 0, 1, rng: &rng)
    let search = BeamSearch(beamSize: beam, maxLength: steps - 1)
    var words = 0
    let t = bestTime(repeats: 10) {
        let model = AttentionStepModel(decoder: decoder, parameters: p, images: decoder.encode(features, p), half: half,
                                       screen: screen)
        let best = search.run(model, images: images, startToken: config.vocabSize - 2, endToken: nil)
        words = best[0].tokens.count
    }
    precondition(words == steps - 1, "decoder bench: expected \(steps - 1) words, got \(words)")
    emit(["bench": "decoder", "mode": beam == 1 ? "greedy" : "beam\(beam)", "weights": useHalf ? "f16" : "f32", "batch": images, "steps": steps,
          "seconds_per_image": t / Double(images), "images_per_s": Double(images) / t,
          "ms_per_step": t / Double(steps) * 1000])
}
