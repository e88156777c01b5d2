#!/usr/bin/env python3
"""Writes the PyTorch reference fixtures for the CNN layer tests (Tests/NNTests/*Conv*, *Pool*, *BatchNorm*).

Usage:  /tmp/venv/bin/python scripts/make_layer_fixtures.py   (writes Tests/Fixtures/layers/*.safetensors)

Every case stores its inputs (float32), the layer's parameters, the forward output, an upstream gradient `dy`
and the resulting input/parameter gradients. Inputs are drawn in float32; the reference outputs and gradients are
computed by PyTorch in float64 from those exact values and then stored as float32, so the fixtures carry no
float32 rounding noise of their own and the Swift tests measure only the Swift implementation's error.

Tensor names are `<case>.<field>`, e.g. `k3s2p1.weight`, `k3s2p1.dx`. Shapes are tiny: the whole folder is a
few tens of kilobytes.
"""
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Fixtures", "layers")


def f32(t):
    """Stored form: contiguous float32 on the CPU."""
    return t.detach().to(torch.float32).contiguous().cpu()


def randn(*shape):
    """Float32 normal samples promoted to float64 (so the float64 reference sees exactly the stored inputs)."""
    return torch.randn(*shape, dtype=torch.float32).to(torch.float64)


def run(module, x):
    """Forward `x` through `module` (float64), backpropagate a random upstream gradient; return the pieces."""
    x = x.clone().requires_grad_(True)
    y = module(x)
    dy = randn(*y.shape)
    y.backward(dy)
    return x, y, dy


def conv_cases(tensors):
    # name: (N, C, OC, H, W, kernel, stride, padding, bias)
    cases = {
        "k3s1p1": (2, 3, 4, 7, 7, 3, 1, 1, True),
        "k3s2p1": (2, 4, 5, 9, 9, 3, 2, 1, False),     # ResNet's downsampling 3×3
        "k3s2p1_even": (2, 3, 4, 8, 8, 3, 2, 1, True),
        "k1s1": (2, 6, 5, 7, 7, 1, 1, 0, True),       # straight GEMM, no im2col
        "k1s1_nobias": (3, 4, 6, 5, 5, 1, 1, 0, False),
        "k1s2": (2, 5, 4, 7, 7, 1, 2, 0, False),      # ResNet's downsample shortcut: subsample, then GEMM
        "k7s2p3": (2, 3, 4, 11, 11, 7, 2, 3, True),   # ResNet stem
        "k3s1p2_rect": (2, 2, 3, 8, 10, 3, 1, 2, True),
        "k2s2p0": (2, 3, 4, 8, 8, 2, 2, 0, True),
        "k5s3p1": (1, 2, 3, 11, 9, 5, 3, 1, False),
    }
    conv_fixture_cases(tensors, cases)
    # Widths that are multiples of 8 for the direct 3×3 kernels (Conv2d+Direct.swift): a full 16-column tile,
    # and a 16 + 8 row with output channels that are not a multiple of 4. Drawn from their own seed, so the
    # cases above (and the other files) keep their values.
    with torch.random.fork_rng():
        torch.manual_seed(1)
        conv_fixture_cases(tensors, {
            "k3s1p1_w16": (3, 5, 4, 6, 16, 3, 1, 1, True),
            "k3s1p1_w24_nobias": (2, 16, 6, 5, 24, 3, 1, 1, False),
        })


def conv_fixture_cases(tensors, cases):
    for name, (n, c, oc, h, w, k, s, p, bias) in cases.items():
        conv = nn.Conv2d(c, oc, k, stride=s, padding=p, bias=bias).to(torch.float64)
        with torch.no_grad():  # float32-representable parameters, like the inputs
            conv.weight.copy_(f32(conv.weight).to(torch.float64))
            if bias:
                conv.bias.copy_(f32(conv.bias).to(torch.float64))
        x, y, dy = run(conv, randn(n, c, h, w))
        tensors.update({f"{name}.x": f32(x), f"{name}.weight": f32(conv.weight), f"{name}.y": f32(y),
                        f"{name}.dy": f32(dy), f"{name}.dx": f32(x.grad), f"{name}.dweight": f32(conv.weight.grad)})
        if bias:
            tensors[f"{name}.bias"] = f32(conv.bias)
            tensors[f"{name}.dbias"] = f32(conv.bias.grad)
        # Conv → ReLU reference for the fused epilogue.
        tensors[f"{name}.y_relu"] = f32(F.relu(y))


def batchnorm_cases(tensors):
    for name, (n, c, h, w) in {"bn": (2, 4, 5, 5), "bn_wide": (3, 6, 3, 4)}.items():
        for mode in ("train", "eval"):
            bn = nn.BatchNorm2d(c, eps=1e-5, momentum=0.1).to(torch.float64)
            with torch.no_grad():
                bn.weight.copy_(f32(1 + 0.5 * torch.randn(c)).to(torch.float64))
                bn.bias.copy_(f32(0.5 * torch.randn(c)).to(torch.float64))
                bn.running_mean.copy_(f32(0.3 * torch.randn(c)).to(torch.float64))
                bn.running_var.copy_(f32(0.5 + torch.rand(c)).to(torch.float64))
                bn.num_batches_tracked.fill_(3)
            key = f"{name}_{mode}"
            tensors.update({f"{key}.weight": f32(bn.weight), f"{key}.bias": f32(bn.bias),
                            f"{key}.running_mean": f32(bn.running_mean), f"{key}.running_var": f32(bn.running_var)})
            bn.train(mode == "train")
            # A per-channel offset and scale, so the statistics are not all ≈ (0, 1).
            x0 = randn(n, c, h, w) * (1 + torch.arange(c, dtype=torch.float64)).view(1, c, 1, 1) + 0.5
            x, y, dy = run(bn, f32(x0).to(torch.float64))
            tensors.update({f"{key}.x": f32(x), f"{key}.y": f32(y), f"{key}.dy": f32(dy), f"{key}.dx": f32(x.grad),
                            f"{key}.dweight": f32(bn.weight.grad), f"{key}.dbias": f32(bn.bias.grad),
                            f"{key}.running_mean_after": f32(bn.running_mean),
                            f"{key}.running_var_after": f32(bn.running_var),
                            f"{key}.num_batches_tracked_after": f32(bn.num_batches_tracked.to(torch.float64))})


def pool_cases(tensors):
    cases = {
        "max_k3s2p1": (nn.MaxPool2d(3, 2, 1), (2, 3, 9, 9)),           # ResNet stem pool
        "max_k3s2p1_even": (nn.MaxPool2d(3, 2, 1), (2, 3, 8, 8)),
        "max_k2s2": (nn.MaxPool2d(2, 2), (2, 2, 7, 7)),                  # VGG pool, odd size floors
        "avg_k3s2p1": (nn.AvgPool2d(3, 2, 1), (2, 3, 9, 9)),            # count_include_pad=True
        "avg_k3s2p1_excl": (nn.AvgPool2d(3, 2, 1, count_include_pad=False), (2, 3, 8, 8)),
        "avg_k2s2": (nn.AvgPool2d(2, 2), (2, 2, 7, 7)),
        "adaptive_7to3": (nn.AdaptiveAvgPool2d(3), (2, 3, 7, 7)),
        "adaptive_8to14": (nn.AdaptiveAvgPool2d(14), (1, 2, 8, 8)),     # upsampling: overlapping bins
        "adaptive_7x9to3x4": (nn.AdaptiveAvgPool2d((3, 4)), (2, 2, 7, 9)),
        "adaptive_5to1": (nn.AdaptiveAvgPool2d(1), (2, 4, 5, 5)),        # global average pool
        "adaptive_6to6": (nn.AdaptiveAvgPool2d(6), (1, 2, 6, 6)),        # identity
    }
    for name, (module, shape) in cases.items():
        x, y, dy = run(module, randn(*shape))
        tensors.update({f"{name}.x": f32(x), f"{name}.y": f32(y), f"{name}.dy": f32(dy), f"{name}.dx": f32(x.grad)})
    # All-negative input: with zero padding the border outputs would be 0; PyTorch pads max-pooling with -inf.
    x, y, dy = run(nn.MaxPool2d(3, 2, 1), -randn(1, 2, 7, 7).abs() - 1)
    tensors.update({"max_negative.x": f32(x), "max_negative.y": f32(y), "max_negative.dy": f32(dy),
                    "max_negative.dx": f32(x.grad)})


def activation_cases(tensors):
    x0 = randn(2, 3, 4, 5)
    x0[0, 0, 0, :3] = 0  # ReLU's gradient at exactly 0 is 0 in PyTorch
    x, y, dy = run(nn.ReLU(), x0)
    tensors.update({"relu.x": f32(x), "relu.y": f32(y), "relu.dy": f32(dy), "relu.dx": f32(x.grad)})
    x, y, dy = run(nn.Flatten(), randn(2, 3, 4, 4))
    tensors.update({"flatten.x": f32(x), "flatten.y": f32(y), "flatten.dy": f32(dy), "flatten.dx": f32(x.grad)})


def linear_cases(tensors):
    """Parity fixtures for the Linear layer (Sources/NN/Layers/Linear.swift): 2-D and 3-D inputs."""
    for name, (shape, out, bias) in {"linear": ((3, 5), 4, True), "linear_3d": ((2, 3, 6), 7, True),
                                     "linear_nobias": ((4, 3), 2, False)}.items():
        lin = nn.Linear(shape[-1], out, bias=bias).to(torch.float64)
        with torch.no_grad():
            lin.weight.copy_(f32(lin.weight).to(torch.float64))
            if bias:
                lin.bias.copy_(f32(lin.bias).to(torch.float64))
        x, y, dy = run(lin, randn(*shape))
        tensors.update({f"{name}.x": f32(x), f"{name}.weight": f32(lin.weight), f"{name}.y": f32(y),
                        f"{name}.dy": f32(dy), f"{name}.dx": f32(x.grad), f"{name}.dweight": f32(lin.weight.grad)})
        if bias:
            tensors[f"{name}.bias"] = f32(lin.bias)
            tensors[f"{name}.dbias"] = f32(lin.bias.grad)


def main():
    torch.manual_seed(0)
    os.makedirs(OUT, exist_ok=True)
    for filename, build in [("conv.safetensors", conv_cases), ("batchnorm.safetensors", batchnorm_cases),
                            ("pool.safetensors", pool_cases), ("activations.safetensors", activation_cases),
                            ("linear.safetensors", linear_cases)]:
        tensors = {}
        build(tensors)
        path = os.path.join(OUT, filename)
        save_file(tensors, path)
        print(f"{path}: {len(tensors)} tensors, {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
