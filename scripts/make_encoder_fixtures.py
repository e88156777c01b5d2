#!/usr/bin/env python3
"""Writes the PyTorch reference fixtures for the encoder tests (Tests/VisionTests).

Usage:  /tmp/venv/bin/python scripts/make_encoder_fixtures.py [--large DIR]

Small fixtures (committed, Tests/Fixtures/encoders/, under 1 MB in all):
  Whole networks are torchvision's own classes and blocks with *narrow widths* (first stage 4 channels
  instead of 64: the same topology and tensor names, 1/256 of the weights), random weights and randomised
  BatchNorm running statistics and affine parameters, so that evaluation-mode BatchNorm is not the identity.
    resnet18_w4_tutorial   the tutorial's Encoder: Sequential(resnet children[:-2]) + AdaptiveAvgPool2d(14) +
                           permute, on 1×3×64×64 (layer4 is 2×2: the pool upsamples); tensors named resnet.N.*
    resnet50_w4            ResNet-50 features (conv1 … layer4), 2×3×64×64, torchvision names
    vgg16_bn_w2, vgg16_w2  VGG-16 (width 2) features up to the last conv+ReLU (before the final max pool), 1×3×32×32
    bottleneck_train       one Bottleneck (stride 2, downsample) in training mode: dx, every parameter
                           gradient, and the updated running statistics for an upstream gradient dy
    compact_train          a narrow compact encoder in training mode (batch statistics): output, gradients
    compact_model/         a model folder (config.json + encoder.safetensors) with a PNG image and the
                           expected `caption features` tensors (image, input, features)
  Each case is `<case>.weights.safetensors` (exactly the state_dict) and `<case>.io.safetensors`
  (inputs, outputs, gradients). Inputs and weights are float32; references are computed in float64 from
  those exact values and stored as float32.

Large fixture (not committed; --large, default /tmp/caption-encoder-fixtures):
  resnet18.pth           a real torchvision resnet18() state_dict (random init + randomised BN statistics)
  resnet18_model/        that file converted by scripts/convert_checkpoint.py
  photo.png, resnet18_expected.safetensors
                         a 300×200 image and PyTorch's input (Pillow bilinear 224×224, ImageNet
                         normalisation) and features (layer4 → AdaptiveAvgPool2d(14) → permute) for it
  VisionTests' converter round-trip test reads it when present and is skipped otherwise.
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet
from torchvision.models.vgg import cfgs as vgg_cfgs, make_layers as vgg_make_layers
from safetensors.torch import save_file

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "Tests", "Fixtures", "encoders")
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def f32(t):
    return t.detach().to(torch.float32).contiguous().cpu()


def randomise_batchnorm(model, gen):
    """Non-trivial evaluation BatchNorm: γ ~ U(0.5, 1.5), β, mean ~ N(0, 0.2²), var ~ U(0.5, 2)."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(torch.rand(c, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(c, generator=gen) * 0.2)
                m.running_mean.copy_(torch.randn(c, generator=gen) * 0.2)
                m.running_var.copy_(torch.rand(c, generator=gen) * 1.5 + 0.5)
                m.num_batches_tracked.fill_(7)


def state_dict_f32(model):
    """The state_dict as stored: float32, without a classifier head (`fc.*`)."""
    return {k: (v.contiguous().clone() if v.dtype == torch.int64 else f32(v)) for k, v in model.state_dict().items()
            if not k.startswith("fc.")}


class NarrowResNet(ResNet):
    """torchvision's ResNet with first-stage width `width` instead of 64 (stages w, 2w, 4w, 8w)."""

    def __init__(self, block, layers, width):
        nn.Module.__init__(self)
        self._norm_layer = nn.BatchNorm2d
        self.inplanes, self.dilation, self.groups, self.base_width = width, 1, 1, 64
        self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, width, layers[0])
        self.layer2 = self._make_layer(block, 2 * width, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 4 * width, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 8 * width, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))  # unused; keeps children()[:-2] == the tutorial's body
        self.fc = nn.Linear(8 * width * block.expansion, 10)
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def features(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


class TutorialEncoder(nn.Module):
    """The sgrvinod tutorial's models.Encoder around a (narrow) ResNet: tensors named resnet.N.*."""

    def __init__(self, resnet, encoded_image_size=14):
        super().__init__()
        self.resnet = nn.Sequential(*list(resnet.children())[:-2])  # drop avgpool and fc
        self.adaptive_pool = nn.AdaptiveAvgPool2d((encoded_image_size, encoded_image_size))

    def forward(self, images):
        return self.adaptive_pool(self.resnet(images)).permute(0, 2, 3, 1)


def narrow_vgg_features(depth, batch_norm, width):
    cfg = [v if v == "M" else v * width // 64 for v in vgg_cfgs["D" if depth == 16 else "E"]]
    features = vgg_make_layers(cfg, batch_norm=batch_norm)
    for m in features.modules():  # torchvision VGG's initialisation
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            nn.init.constant_(m.bias, 0.0)
    wrapper = nn.Module()
    wrapper.features = features  # state_dict names features.N.*
    return wrapper


class ConvBNReLU(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class CompactNet(nn.Module):
    """The compact encoder (Sources/Vision/Architecture.swift, CompactNetSpec): annotations N×L×D."""

    def __init__(self, channels, strides):
        super().__init__()
        self.layers = nn.ModuleList(ConvBNReLU(cin, cout, s) for cin, cout, s in zip([3] + channels, channels, strides))

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x.flatten(2).transpose(1, 2)


def save_case(name, model, io):
    save_file(state_dict_f32(model), os.path.join(OUT, f"{name}.weights.safetensors"))
    save_file({k: f32(v) for k, v in io.items()}, os.path.join(OUT, f"{name}.io.safetensors"))


def eval_case(name, model, forward, input_shape, gen):
    """Float64 evaluation-mode reference for float32 weights and input."""
    model.eval()
    x = torch.randn(*input_shape, generator=gen)
    ref = model.double()
    with torch.no_grad():
        y = forward(ref, x.double())
    model.float()
    save_case(name, model, {"input": x, "output": y})
    print(f"{name}: input {list(x.shape)} -> output {list(y.shape)}")


def train_case(name, model, forward, input_shape, gen, extra=None):
    """Float64 training-mode reference: output, dx, every parameter gradient, updated running statistics."""
    model.train()
    x = torch.randn(*input_shape, generator=gen)
    ref = model.double()
    xd = x.double().requires_grad_(True)
    y = forward(ref, xd)
    dy = torch.randn(*y.shape, generator=gen, dtype=torch.float32).double()
    y.backward(dy)
    io = {"input": x, "output": y, "dy": dy, "dx": xd.grad}
    for k, p in ref.named_parameters():
        io[f"grad.{k}"] = p.grad
    model.float()
    # Weights are saved *before* the forward's running-statistics update: reload those from a copy.
    io.update({f"after.{k}": v for k, v in ref.state_dict().items() if "running" in k})
    if extra:
        io.update(extra)
    return io, x


def small_fixtures():
    os.makedirs(OUT, exist_ok=True)
    gen = torch.Generator().manual_seed(1234)
    torch.manual_seed(1234)

    # ResNet-18 (width 4) through the tutorial's Encoder: resnet.N.* names, 14×14 adaptive pool (upsampling 2×2).
    r18 = NarrowResNet(BasicBlock, [2, 2, 2, 2], width=4)
    randomise_batchnorm(r18, gen)
    eval_case("resnet18_w4_tutorial", TutorialEncoder(r18), lambda m, x: m(x).reshape(x.shape[0], 14 * 14, -1),
              (1, 3, 64, 64), gen)

    r50 = NarrowResNet(Bottleneck, [3, 4, 6, 3], width=4)
    randomise_batchnorm(r50, gen)
    eval_case("resnet50_w4", r50, lambda m, x: m.features(x), (2, 3, 64, 64), gen)

    for bn in (True, False):
        vgg = narrow_vgg_features(16, bn, width=2)
        if bn:
            randomise_batchnorm(vgg, gen)
        with torch.no_grad():  # non-zero biases
            for m in vgg.modules():
                if isinstance(m, nn.Conv2d):
                    m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
        eval_case(f"vgg16{'_bn' if bn else ''}_w2", vgg, lambda m, x: m.features[:-1](x), (1, 3, 32, 32), gen)

    # One Bottleneck with stride 2 and a downsample shortcut, in training mode.
    block = Bottleneck(8, 4, stride=2, downsample=nn.Sequential(nn.Conv2d(8, 16, 1, 2, bias=False), nn.BatchNorm2d(16)))
    randomise_batchnorm(block, gen)
    before = state_dict_f32(block)
    io, _ = train_case("bottleneck_train", block, lambda m, x: m(x), (2, 8, 9, 9), gen)
    save_file(before, os.path.join(OUT, "bottleneck_train.weights.safetensors"))
    save_file({k: f32(v) for k, v in io.items()}, os.path.join(OUT, "bottleneck_train.io.safetensors"))
    print("bottleneck_train: input [2, 8, 9, 9]")

    # A narrow compact encoder in training mode (batch statistics), whole network.
    channels, strides = [4, 8, 8, 16, 16, 24], [2, 1, 2, 1, 2, 1]
    compact = CompactNet(channels, strides)
    randomise_batchnorm(compact, gen)
    before = state_dict_f32(compact)
    io, _ = train_case("compact_train", compact, lambda m, x: m(x), (3, 3, 24, 24), gen)
    io["spec.channels"] = torch.tensor(channels, dtype=torch.float32)
    io["spec.strides"] = torch.tensor(strides, dtype=torch.float32)
    save_file(before, os.path.join(OUT, "compact_train.weights.safetensors"))
    save_file({k: f32(v) for k, v in io.items()}, os.path.join(OUT, "compact_train.io.safetensors"))
    print("compact_train: input [3, 3, 24, 24]")

    compact_model_folder(gen)


def pillow_input(image, size, mean, std, crop=None):
    """The Swift preprocessing in PyTorch terms: Pillow bilinear resize to size×size, centre crop,
    ToTensor, Normalize."""
    import torchvision.transforms as T
    steps = [T.Resize((size, size), interpolation=T.InterpolationMode.BILINEAR)]
    if crop:
        steps.append(T.CenterCrop(crop))
    steps += [T.ToTensor(), T.Normalize(mean, std)]
    return T.Compose(steps)(image)


def test_image(width, height, seed):
    """A small scene: flat background, a few coloured rectangles and discs, a little noise."""
    from PIL import Image, ImageDraw
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (width, height), tuple(int(v) for v in rng.integers(0, 256, 3)))
    draw = ImageDraw.Draw(img)
    for i in range(4):
        x0, y0 = rng.integers(0, width - 20), rng.integers(0, height - 20)
        x1, y1 = x0 + rng.integers(10, width // 2), y0 + rng.integers(10, height // 2)
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        (draw.ellipse if i % 2 else draw.rectangle)([x0, y0, x1, y1], fill=colour)
    arr = np.asarray(img).astype(np.int16) + rng.integers(-8, 9, (height, width, 3))
    return Image.fromarray(arr.clip(0, 255).astype(np.uint8))


def compact_model_folder(gen):
    """A compact-net model folder, an image, and what `caption features` must write for it."""
    folder = os.path.join(OUT, "compact_model")
    os.makedirs(folder, exist_ok=True)
    channels, strides = [8, 8, 16, 16, 32], [2, 1, 2, 1, 2]
    net = CompactNet(channels, strides)
    randomise_batchnorm(net, gen)
    net.eval()
    size, crop = 40, 32
    mean, std = [0.5, 0.45, 0.4], [0.25, 0.2, 0.3]
    config = {
        "format": "caption-model", "version": 1,
        "encoder": {"arch": "compact", "weights": "encoder.safetensors", "naming": "torchvision",
                    "channels": channels, "strides": strides, "pool": None, "output": "layers"},
        "preprocess": {"size": size, "resize": "bilinear", "center_crop": crop, "mean": mean, "std": std},
    }
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    save_file(state_dict_f32(net), os.path.join(folder, "encoder.safetensors"))
    image = test_image(57, 43, seed=5)
    image.save(os.path.join(OUT, "compact_image.png"))
    x = pillow_input(image, size, mean, std, crop)
    with torch.no_grad():
        features = net.double()(x.double()[None])[0]
    save_file({"image": torch.from_numpy(np.asarray(image).copy()), "input": f32(x), "features": f32(features)},
              os.path.join(OUT, "compact_expected.safetensors"))
    print(f"compact_model: image 57×43 -> input {list(x.shape)} -> features {list(features.shape)}")


def large_fixture(directory):
    """A real torchvision resnet18 state_dict through convert_checkpoint.py, with PyTorch's features for an image."""
    os.makedirs(directory, exist_ok=True)
    gen = torch.Generator().manual_seed(99)
    torch.manual_seed(99)
    model = torchvision.models.resnet18()
    randomise_batchnorm(model, gen)
    model.eval()
    pth = os.path.join(directory, "resnet18.pth")
    torch.save(model.state_dict(), pth)
    folder = os.path.join(directory, "resnet18_model")
    subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "convert_checkpoint.py"), pth, "--out", folder], check=True)
    with open(os.path.join(folder, "config.json")) as f:
        config = json.load(f)
    pre = config["preprocess"]
    image = test_image(300, 200, seed=7)
    image.save(os.path.join(directory, "photo.png"))
    x = pillow_input(image, pre["size"], pre["mean"], pre["std"], pre["center_crop"])
    body = nn.Sequential(*list(model.children())[:-2]).double()
    pool = config["encoder"]["pool"]
    with torch.no_grad():
        fmap = body(x.double()[None])
        pooled = F.adaptive_avg_pool2d(fmap, pool)
        features = pooled.permute(0, 2, 3, 1).reshape(-1, fmap.shape[1])
    save_file({"input": f32(x), "features": f32(features)}, os.path.join(directory, "resnet18_expected.safetensors"))
    print(f"large fixture in {directory}: resnet18 -> features {list(features.shape)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--large", default="/tmp/caption-encoder-fixtures", help="folder for the large (uncommitted) fixture")
    ap.add_argument("--skip-large", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(2)
    small_fixtures()
    for root, _, files in os.walk(OUT):  # safetensors writes 0600 files
        for f in files:
            os.chmod(os.path.join(root, f), 0o644)
    if not args.skip_large:
        large_fixture(args.large)


if __name__ == "__main__":
    main()
