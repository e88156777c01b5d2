#!/usr/bin/env python3
"""Writes the PyTorch reference fixtures for the video autoencoder's parity tests (Tests/VideoTests).

Usage:  /tmp/venv/bin/python scripts/make_video_fixtures.py   (writes Tests/Fixtures/video/parity.safetensors)

The model is scripts/video_reference.py, tiny configurations, torch.manual_seed(0). Per case `<case>`:
  <case>.frames                 F×B×D input frames (uniform in [0, 1] for pixels, normal for features)
  <case>.<param>                every parameter the Swift model has (PyTorch names; an unconditioned decoder's
                                unused weight_ih_l0 is left out)
  <case>.grad.<param>           d(total loss)/d(param)
  <case>.loss                   [reconstruction, future] mean per-frame losses (0 for an absent decoder)
  <case>.infer.code / .infer.reconstruction / .infer.future    free-running inference (logits, natural order)
and the metadata entry `<case>` holds {"config": VideoModelConfig as config.json writes it, "teacher": ε,
"tbptt": [k1, k2] or null}.

Cases: a 2-layer LSTM composite with an embedding and conditional decoders under teacher forcing; a
bidirectional GRU with a free-running (ε = 0, outputs fed back detached) conditional reconstruction decoder and
an unconditioned future predictor; a 2-layer bidirectional tanh-RNN on feature vectors (squared error); a
1-layer LSTM under truncated BPTT (k1, k2) = (2, 3); and an LSTM whose decoders share one readout, the
reconstruction decoder free-running; and 8×8 frames through convolutional readouts (`readout: conv`), the
conditional reconstruction decoder free-running (its readout runs step by step) and the future predictor
unconditioned (its readout runs once over all steps). As in the other fixture scripts, inputs and parameters are
drawn in float32 and everything is computed in float64 from those exact values.
"""
import json
import os
import sys

import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from video_reference import VideoAutoencoder  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Fixtures", "video")


def config(**overrides):
    cfg = {"input": "pixels", "frame_size": 3, "channels": 1, "feature_dimension": 0, "feature_encoder": None,
           "cell": "lstm", "hidden_size": 4, "layers": 1, "bidirectional": False, "embedding_size": 5,
           "reconstruction": "conditional", "future": "conditional", "observed_frames": 4, "future_frames": 3}
    cfg.update(overrides)
    return cfg


CASES = {
    "lstm2_embed_conditional": (config(layers=2), 1.0, None),
    "gru_bi_free_running": (config(cell="gru", bidirectional=True, embedding_size=0, future="unconditioned"), 0.0, None),
    "rnn_bi2_features": (config(input="features", feature_dimension=7, cell="rnn_tanh", layers=2, bidirectional=True,
                                embedding_size=0, reconstruction="unconditioned", hidden_size=3), 1.0, None),
    "lstm_tbptt": (config(observed_frames=5, future_frames=5), 1.0, (2, 3)),
    "lstm_shared_readout_free_running": (config(shared_readout=True, future="unconditioned"), 0.0, None),
    "lstm_conv_readout_free_running": (config(frame_size=8, readout="conv", future="unconditioned"), 0.0, None),
}


def f32(t):
    return t.detach().to(torch.float32).contiguous().cpu()


def main():
    torch.manual_seed(0)
    tensors, metadata = {}, {}
    for name, (cfg, teacher, tbptt) in CASES.items():
        model = VideoAutoencoder(cfg)
        with torch.no_grad():  # float32-representable parameters, computed in float64
            for pname, p in model.named_parameters():
                if pname.endswith("frame_bias"):  # starts at zero; any value tests it better
                    p.normal_(0, 0.5)
                p.copy_(f32(p))
        model = model.to(torch.float64)
        frames_count, batch = cfg["observed_frames"] + cfg["future_frames"], 3
        if cfg["input"] == "pixels":
            frames = torch.rand(frames_count, batch, model.d, dtype=torch.float32)
        else:
            frames = torch.randn(frames_count, batch, model.d, dtype=torch.float32)
        x = frames.to(torch.float64)
        if tbptt:
            total = model.tbptt_loss(x, *tbptt)
            with torch.no_grad():
                _, losses = model(x)
        else:
            total, losses = model(x, teacher=teacher)
        total.backward()
        losses = {k: v.item() for k, v in losses.items()}
        tensors[f"{name}.frames"] = frames
        tensors[f"{name}.loss"] = torch.tensor([float(losses.get("reconstruction", 0.0)), float(losses.get("future", 0.0))],
                                               dtype=torch.float32)
        for pname, p in model.named_parameters():
            if pname.endswith("rnn.weight_ih_l0") and not getattr(model, pname.split(".")[0]).conditional:
                continue
            tensors[f"{name}.{pname}"] = f32(p)
            tensors[f"{name}.grad.{pname}"] = f32(p.grad if p.grad is not None else torch.zeros_like(p))
        for key, value in model.infer(x).items():
            tensors[f"{name}.infer.{key}"] = f32(value)
        metadata[name] = json.dumps({"config": cfg, "teacher": teacher, "tbptt": list(tbptt) if tbptt else None})
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "parity.safetensors")
    save_file(tensors, path, metadata=metadata)
    print(f"wrote {path}: {len(tensors)} tensors, {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
