import NN
import TensorCore
import CaptionSupport
import CaptionData

extension AttentionDecoder {
    /// Copies the decoder's parameters from a safetensors file holding the tutorial's `DecoderWithAttention`
    /// state_dict (bare names: `attention.encoder_att.weight`, `decode_step.weight_ih`, `fc.bias`, …), strictly:
    /// every parameter present with its exact shape and a floating-point dtype (F32, F16, BF16, F64), nothing
    /// else in the file. Errors name the file and the first problem (and how many more there are).
    /// The decoder must have been built with prefix "".
    public func load(from file: SafeTensorsFile, into p: Parameters) throws {
        let layout = p.layout
        let expected = layout.params.map(\.name)
        let missing = expected.filter { file.info($0) == nil }
        let unexpected = file.names.filter { layout.param(named: $0) == nil }
        func fail(_ problems: [String]) -> CaptionError {
            CaptionError(file: file.path, problems[0] + (problems.count > 1 ? " (and \(problems.count - 1) more)" : ""))
        }
        let c = config
        let what = "a decoder with encoder_dim \(c.encoderDim), attention_dim \(c.attentionDim), embed_dim \(c.embedDim), "
            + "decoder_dim \(c.decoderDim), vocab_size \(c.vocabSize)"
        if !missing.isEmpty { throw fail(missing.map { "missing tensor \($0)" }) }
        if !unexpected.isEmpty { throw fail(unexpected.map { "unexpected tensor \($0)" }) }
        for param in layout.params {
            let info = file.info(param.name)!
            guard info.shape == param.shape else {
                throw CaptionError(file: file.path, "tensor \(param.name) has shape \(info.shape), expected \(param.shape) for \(what)")
            }
            switch info.dtype {
            case .F32:
                let bytes = try file.bytes(param.name)
                UnsafeMutableRawPointer(p.value(param)).copyMemory(from: bytes.baseAddress!, byteCount: param.count * 4)
            case .F16, .BF16, .F64:
                let t = try file.tensor(param.name)
                t.withUnsafeBufferPointer { p.value(param).update(from: $0.baseAddress!, count: param.count) }
            default:
                throw CaptionError(file: file.path, "tensor \(param.name) has dtype \(info.dtype.rawValue), expected a floating-point type")
            }
        }
    }

    /// Writes the parameters under the tutorial's state_dict names (F32), atomically.
    public func save(_ p: Parameters, to path: String, metadata: [String: String] = [:]) throws {
        var w = SafeTensorsWriter()
        w.metadata = metadata
        for param in p.layout.params { w.add(param.name, p.tensor(param)) }
        try w.write(to: path)
    }
}
