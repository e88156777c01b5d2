import TensorCore

/// Rectified linear unit, `y = max(x, 0)` elementwise (any shape).
///
/// Backward needs only the output: `dx = dy` where `y > 0`, else 0 (PyTorch also gives 0 at x = 0).
public struct ReLU {
    /// ReLU has no parameters or state.
    public init() {}

    /// `x` (any shape) → `max(x, 0)` of the same shape, in a new tensor.
    public func forward(_ x: Tensor) -> Tensor {
        Tensor(shape: x.shape) { y in
            x.withUnsafeBufferPointer { Kernels.relu(x.count, $0.baseAddress!, y.baseAddress!) }
        }
    }

    /// Applies ReLU in place (PyTorch `inplace=True`); the result doubles as backward's `output`.
    public func forward(inPlace x: inout Tensor) {
        let n = x.count
        x.withUnsafeMutableBufferPointer { Kernels.relu(n, $0.baseAddress!, $0.baseAddress!) }
    }

    /// `dy`, `output` (ReLU's y): same shape → dx.
    public func backward(_ dy: Tensor, output y: Tensor) -> Tensor {
        precondition(dy.shape == y.shape, "ReLU.backward: dy \(dy.shape) vs y \(y.shape)")
        return Tensor(shape: y.shape) { dx in
            y.withUnsafeBufferPointer { yb in
                dy.withUnsafeBufferPointer { dyb in Self.mask(y.count, yb.baseAddress!, dyb.baseAddress!, dx.baseAddress!) }
            }
        }
    }

    /// Masks `dy` in place with `y > 0` (backward without a new allocation).
    public func backward(inPlace dy: inout Tensor, output y: Tensor) {
        precondition(dy.shape == y.shape, "ReLU.backward: dy \(dy.shape) vs y \(y.shape)")
        y.withUnsafeBufferPointer { yb in
            dy.withUnsafeMutableBufferPointer { d in Self.mask(y.count, yb.baseAddress!, d.baseAddress!, d.baseAddress!) }
        }
    }

    /// `Kernels.reluBackward`, split over the workers when the tensor is large enough to pay for it (a whole
    /// CNN activation; small ones, such as a recurrent step's, stay on the calling thread).
    private static func mask(_ n: Int, _ y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>) {
        let chunk = 1 << 14
        let chunks = (n + chunk - 1) / chunk
        guard n >= 1 << 18 else { return Kernels.reluBackward(n, y, dy, dx) }
        parallelFor(chunks) { c in
            let lo = c &* chunk, count = min(chunk, n &- lo)
            Kernels.reluBackward(count, y + lo, dy + lo, dx + lo)
        }
    }
}

/// Flattens every dimension after the first: `N×C×H×W → N×(C·H·W)` (PyTorch `nn.Flatten()`).
/// A reshape: no copy beyond copy-on-write.
public struct Flatten {
    /// Flatten has no parameters or state.
    public init() {}

    /// `x: N×… → N×(product of the rest)`; needs rank ≥ 1.
    public func forward(_ x: Tensor) -> Tensor {
        precondition(x.rank >= 1, "Flatten needs a batch dimension")
        return x.reshaped([x.shape[0], -1])
    }

    /// `dy: N×(C·H·W) → dx` with the input's shape.
    public func backward(_ dy: Tensor, inputShape: [Int]) -> Tensor { dy.reshaped(inputShape) }
}
