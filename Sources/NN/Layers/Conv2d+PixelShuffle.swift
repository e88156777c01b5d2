import TensorCore

// MARK: - Sub-pixel convolution: a convolution followed by nn.PixelShuffle(2)
//
// With `imageParallel` (and not the direct kernels) the shuffle is the GEMM epilogue's write pattern, and its
// inverse (with ReLU's backward) is how the backward gathers dY: no separate pass over the activations, and no
// extra full-size buffer. Otherwise the layers run one after the other, with the same results.

extension Conv2d {
    /// `PixelShuffle.forward(forward(x, relu: relu))`: N×C×H×W → N × OC/4 × 2·OH × 2·OW (OC a multiple of 4).
    public func forwardPixelShuffled(_ x: Tensor, _ p: Parameters, relu: Bool = false,
                                     workspace: ConvWorkspace? = nil) -> Tensor {
        precondition(outChannels % 4 == 0, "a pixel-shuffled convolution needs a multiple of 4 output channels")
        let g = geometry(x.shape)
        guard usesImageParallel && !usesDirect(g) else { return PixelShuffle.forward(forward(x, p, relu: relu, workspace: workspace)) }
        var y = Tensor(shape: [g.n, outChannels / 4, 2 * g.oh, 2 * g.ow], unsafeUninitialized: { _ in })
        x.withUnsafeBufferPointer { xb in
            y.withUnsafeMutableBufferPointer {
                forwardImageParallel(g, x: xb.baseAddress!, y: $0.baseAddress!, weight: p.value(weight),
                                     bias: bias.map { UnsafePointer(p.value($0)) }, relu: relu, shuffled: true,
                                     workspace: workspace ?? .forCurrentThread)
            }
        }
        return y
    }

    /// The backward of `forwardPixelShuffled`: `dy` is the gradient of its output (N × OC/4 × 2·OH × 2·OW);
    /// `reluOutput` is that output when the forward applied ReLU (nil when it did not). Accumulates dW (and db)
    /// into `p.grads` and returns dx (N×C×H×W).
    public func backwardPixelShuffled(_ dy: Tensor, input x: Tensor, reluOutput: Tensor?, _ p: Parameters,
                                      workspace: ConvWorkspace? = nil) -> Tensor {
        let g = geometry(x.shape)
        precondition(dy.shape == [g.n, outChannels / 4, 2 * g.oh, 2 * g.ow], "backwardPixelShuffled: dy \(dy.shape) for input \(x.shape)")
        if let reluOutput { precondition(reluOutput.shape == dy.shape) }
        guard usesImageParallel && !usesDirect(g) else {
            var d = dy
            if let reluOutput { ReLU().backward(inPlace: &d, output: reluOutput) }
            var unshuffled = Tensor(shape: [g.n, outChannels, g.oh, g.ow], unsafeUninitialized: { _ in })
            d.withUnsafeBufferPointer { db in
                unshuffled.withUnsafeMutableBufferPointer {
                    PixelShuffle.shuffle(db.baseAddress!, into: $0.baseAddress!, images: g.n, channels: outChannels / 4,
                                         height: g.oh, width: g.ow, inverse: true)
                }
            }
            return backward(unshuffled, input: x, p, workspace: workspace)
        }
        var dx = Tensor(shape: x.shape)  // zeroed: col2im accumulates
        x.withUnsafeBufferPointer { xb in
            dy.withUnsafeBufferPointer { dyb in
                dx.withUnsafeMutableBufferPointer { dxb in
                    withOptionalPointer(reluOutput) { mask in
                        backwardImageParallel(g, x: xb.baseAddress!, dy: dyb.baseAddress!, dx: dxb.baseAddress!, p,
                                              shuffled: true, reluOutput: mask, workspace: workspace ?? .forCurrentThread)
                    }
                }
            }
        }
        return dx
    }
}
