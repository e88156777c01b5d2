"""Experiment: does a convolutional frame readout beat the linear one? (PyTorch only; not a parity fixture)

    caption video synth --out /tmp/vtrain --count 5000 --seed 1
    caption video synth --out /tmp/test999 --count 200 --seed 999
    python scripts/video_readout_experiment.py linear|conv STEPS [TRAIN_DIR TEST_DIR]

The model is scripts/video_reference.py's VideoAutoencoder with weights/video's architecture (the "shipped"
preset: LSTM H = 512, frame embedding 256, unconditioned composite decoders) and PyTorch's default
initialisation. Only the two readouts change with `conv`:

    Linear(H, 16·16·16), ReLU → nearest ×2 → Conv 3×3 16→16, ReLU → nearest ×2 → Conv 3×3 16→1   (logits 64×64)

Training: batch 16 drawn at random from TRAIN_DIR's sequences, Adam lr 2e-3 → 1e-4 (cosine), clip 100,
2 threads. Prints the free-running BCE per frame (reconstruction, future) on TEST_DIR's sequences, the
numbers `caption video eval` reports as "model". Frames are cached as DIR.npy beside each folder.
"""
import glob
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from video_reference import BENCH_PRESETS, VideoAutoencoder  # noqa: E402


class ConvReadout(nn.Module):
    """…×H → …×4096 logits through two nearest-upsampling 3×3 convolutions."""

    def __init__(self, hidden):
        super().__init__()
        self.fc = nn.Linear(hidden, 16 * 16 * 16)
        self.conv1 = nn.Conv2d(16, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 1, 3, padding=1)

    def forward(self, x):
        lead = x.shape[:-1]
        t = F.relu(self.fc(x.reshape(-1, x.shape[-1]))).view(-1, 16, 16, 16)
        t = F.relu(self.conv1(F.interpolate(t, scale_factor=2, mode="nearest")))
        t = self.conv2(F.interpolate(t, scale_factor=2, mode="nearest"))
        return t.reshape(*lead, 64 * 64)


def frames_of(folder):
    """All sequences of a `caption video synth` folder as a uint8 array S × 20 × 64 × 64 (cached)."""
    cache = folder.rstrip("/") + ".npy"
    if os.path.exists(cache):
        return np.load(cache)
    seqs = sorted(glob.glob(os.path.join(folder, "seq_*")))
    out = np.stack([np.stack([np.array(Image.open(f).convert("L")) for f in sorted(glob.glob(s + "/*.png"))])
                    for s in seqs])
    np.save(cache, out)
    return out


def as_batch(seqs):
    """S × F × 64 × 64 uint8 → F × S × 4096 floats in [0, 1] (the model's time-major layout)."""
    return torch.from_numpy(seqs).float().div(255).permute(1, 0, 2, 3).reshape(seqs.shape[1], len(seqs), -1)


def main():
    kind, steps = sys.argv[1], int(sys.argv[2])
    train_dir, test_dir = sys.argv[3:5] if len(sys.argv) > 4 else ("/tmp/vtrain", "/tmp/test999")
    torch.set_num_threads(2)
    torch.manual_seed(1)
    model = VideoAutoencoder(dict(BENCH_PRESETS["shipped"]))
    if kind == "conv":
        model.reconstruction.readout = ConvReadout(model.h)
        model.future.readout = ConvReadout(model.h)
    elif kind != "linear":
        sys.exit(f"unknown readout {kind!r}: linear or conv")
    train, test = frames_of(train_dir), frames_of(test_dir)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    rng = np.random.default_rng(1)
    t0 = time.time()
    for s in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = 1e-4 + 0.5 * (2e-3 - 1e-4) * (1 + math.cos(math.pi * s / steps))
        loss, _ = model(as_batch(train[rng.integers(0, len(train), 16)]))
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 100)
        optimizer.step()
        if s % 250 == 0:
            print(s, round(loss.item(), 1), round(time.time() - t0), flush=True)
    frames = as_batch(test)
    out = model.infer(frames)
    t = model.cfg["observed_frames"]
    loss = {role: model.frame_loss(out[role], target).item()
            for role, target in (("reconstruction", frames[:t]), ("future", frames[t:]))}
    print(kind, steps, "reconstruction", round(loss["reconstruction"], 1), "future", round(loss["future"], 1),
          "seconds", round(time.time() - t0), flush=True)


if __name__ == "__main__":
    main()
