"""PyTorch reference of the video autoencoder (Sources/Video): the same model with the same parameter names,
used by scripts/make_video_fixtures.py (parity fixtures) and scripts/bench_reference.py (speed).

    frame_embed            nn.Linear(D, E)            optional; shared by the encoder and conditional decoder inputs
    encoder                nn.LSTM / nn.GRU / nn.RNN (E or D → H, L layers, optionally bidirectional)
    reconstruction.rnn     same cell, L layers, hidden dirs·H, input E (conditional) or nothing (unconditioned)
    reconstruction.readout nn.Linear(dirs·H, D), or ConvReadout with `readout: conv`
    future.rnn / future.readout   likewise

The encoder's final state of layer l, both directions side by side, starts layer l of each decoder. The
reconstruction decoder outputs v_T … v_1, the future predictor v_{T+1} … v_{T+K}; a conditional decoder reads
nothing at its first step and the previous frame afterwards: the ground truth with probability `teacher`
(scheduled sampling, a coin per sequence and step), else its own output σ(logits) (or the prediction itself
for features), detached. An unconditioned decoder reads nothing; PyTorch cannot build an RNN without inputs,
so it gets a constant zero input of width 1 whose weight (weight_ih_l0) is never stored by the Swift model.

Loss per decoder: Σ over frame elements, mean over frames and sequences, of BCE-with-logits (pixels) or the
squared error (features); the total is the sum over decoders.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


def make_rnn(cell, input_size, hidden, layers, bidirectional=False):
    if cell == "lstm":
        return nn.LSTM(input_size, hidden, layers, bidirectional=bidirectional)
    if cell == "gru":
        return nn.GRU(input_size, hidden, layers, bidirectional=bidirectional)
    return nn.RNN(input_size, hidden, layers, nonlinearity="tanh" if cell == "rnn_tanh" else "relu",
                  bidirectional=bidirectional)


class ConvReadout(nn.Module):
    """…×H → …×C·S·S logits through sub-pixel convolutions (Sources/Video/FrameReadout.swift's ConvFrameReadout):
    Linear H → 16·(S/4)², ReLU; conv 3×3 16→64 at S/4, shuffle ×2, ReLU; conv 3×3 16→4C (no bias) at S/2,
    shuffle ×2; plus a per-pixel bias."""

    def __init__(self, hidden, frame_size, channels):
        super().__init__()
        self.q, self.c = frame_size // 4, channels
        self.fc = nn.Linear(hidden, 16 * self.q * self.q)
        self.conv1 = nn.Conv2d(16, 64, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 4 * channels, 3, padding=1, bias=False)
        self.frame_bias = nn.Parameter(torch.zeros(channels * frame_size * frame_size))

    def forward(self, x):
        lead = x.shape[:-1]
        t = F.relu(self.fc(x.reshape(-1, x.shape[-1]))).view(-1, 16, self.q, self.q)
        t = F.relu(F.pixel_shuffle(self.conv1(t), 2))
        t = F.pixel_shuffle(self.conv2(t), 2)
        return t.reshape(*lead, -1) + self.frame_bias


def make_readout(cfg, hidden, frame_dim):
    if cfg.get("readout", "linear") == "conv":
        return ConvReadout(hidden, cfg["frame_size"], cfg["channels"])
    return nn.Linear(hidden, frame_dim)


class Decoder(nn.Module):
    def __init__(self, cell, layers, input_size, hidden, frame_dim, conditional, readout=None):
        super().__init__()
        self.conditional = conditional
        self.rnn = make_rnn(cell, input_size if conditional else 1, hidden, layers)
        self.readout = readout


class VideoAutoencoder(nn.Module):
    """`cfg` is the Swift VideoModelConfig as a dict (config.json's keys)."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        if cfg["input"] == "pixels":
            d = cfg["channels"] * cfg["frame_size"] ** 2
        else:
            d = cfg["feature_dimension"]
        self.d, self.e, self.h = d, cfg["embedding_size"], cfg["hidden_size"]
        self.layers, self.dirs = cfg["layers"], 2 if cfg["bidirectional"] else 1
        self.cell, self.loss_kind = cfg["cell"], "bce" if cfg["input"] == "pixels" else "mse"
        rnn_in = self.e if self.e > 0 else d
        self.frame_embed = nn.Linear(d, self.e) if self.e > 0 else None
        self.encoder = make_rnn(self.cell, rnn_in, self.h, self.layers, cfg["bidirectional"])
        shared = cfg.get("shared_readout", False)
        for role in ("reconstruction", "future"):
            kind = cfg[role]
            own = None if shared else make_readout(cfg, self.dirs * self.h, d)
            module = None if kind == "none" else Decoder(self.cell, self.layers, rnn_in, self.dirs * self.h, d,
                                                          kind == "conditional", readout=own)
            setattr(self, role, module)
        self.readout = make_readout(cfg, self.dirs * self.h, d) if shared else None

    def readout_of(self, decoder):
        return self.readout if self.readout is not None else decoder.readout

    # -- pieces --------------------------------------------------------------------------------------------
    def embed(self, frames):
        return self.frame_embed(frames) if self.frame_embed is not None else frames

    def bridge(self, state):
        """(L·dirs)×B×H → L×B×(dirs·H), both directions of a layer side by side."""
        def one(s):
            n, b, h = s.shape
            return s.view(self.layers, self.dirs, b, h).permute(0, 2, 1, 3).reshape(self.layers, b, self.dirs * h)
        return tuple(one(s) for s in state) if isinstance(state, tuple) else one(state)

    def own_output(self, logits):
        return (torch.sigmoid(logits) if self.loss_kind == "bce" else logits).detach()

    def frame_loss(self, outputs, targets):
        """Sum over elements / number of frames."""
        frames = targets.shape[0] * targets.shape[1]
        if self.loss_kind == "bce":
            return F.binary_cross_entropy_with_logits(outputs, targets, reduction="sum") / frames
        return ((outputs - targets) ** 2).sum() / frames

    def decoder_inputs(self, decoder, previous, steps, batch, ref):
        """Inputs of steps 0..K−1 when the previous frames are known: zeros, then embed(previous)."""
        if not decoder.conditional:
            return ref.new_zeros(steps, batch, 1)
        width = self.e if self.e > 0 else self.d
        return torch.cat([ref.new_zeros(1, batch, width), self.embed(previous)], 0)

    def run_decoder(self, decoder, state, targets, teacher=1.0, generator=None, free=False):
        """Logits K×B×D. `teacher` < 1 (or `free`) steps one frame at a time, feeding back own outputs."""
        steps, batch, _ = targets.shape
        if not decoder.conditional or (teacher >= 1 and not free):
            out, _ = decoder.rnn(self.decoder_inputs(decoder, targets[:-1], steps, batch, targets), state)
            return self.readout_of(decoder)(out)
        width = self.e if self.e > 0 else self.d
        inp = targets.new_zeros(1, batch, width)
        outputs = []
        for k in range(steps):
            if k > 0:
                own = self.own_output(outputs[-1])
                if free:
                    frame = own
                else:
                    coins = torch.rand(batch, generator=generator) < teacher
                    frame = torch.where(coins[:, None], targets[k - 1], own)
                inp = self.embed(frame)[None]
            out, state = decoder.rnn(inp, state)
            outputs.append(self.readout_of(decoder)(out[0]))
        return torch.stack(outputs)

    def encode(self, observed):
        _, state = self.encoder(self.embed(observed))
        return self.bridge(state)

    def targets(self, frames):
        t, k = self.cfg["observed_frames"], self.cfg["future_frames"]
        return {"reconstruction": frames[:t].flip(0), "future": frames[t:t + k]}

    # -- training loss -------------------------------------------------------------------------------------
    def forward(self, frames, teacher=1.0, generator=None):
        """frames: F×B×D. Returns (total loss, {role: loss})."""
        t = self.cfg["observed_frames"]
        state = self.encode(frames[:t])
        targets = self.targets(frames)
        losses = {}
        for role in ("reconstruction", "future"):
            decoder = getattr(self, role)
            if decoder is not None:
                logits = self.run_decoder(decoder, state, targets[role], teacher, generator)
                losses[role] = self.frame_loss(logits, targets[role])
        return sum(losses.values()), losses

    @torch.no_grad()
    def infer(self, frames):
        """Free-running decoders: code (B×codeSize), reconstruction (T×B×D, natural order), future (K×B×D)."""
        t = self.cfg["observed_frames"]
        state = self.encode(frames[:t])
        parts = state if isinstance(state, tuple) else (state,)
        code = torch.cat([torch.cat([s[l] for s in parts], 1) for l in range(self.layers)], 1)
        targets = self.targets(frames)
        out = {"code": code}
        for role in ("reconstruction", "future"):
            decoder = getattr(self, role)
            if decoder is not None:
                logits = self.run_decoder(decoder, state, targets[role], free=True)
                out[role] = logits.flip(0) if role == "reconstruction" else logits
        return out

    # -- truncated BPTT (single-layer, unidirectional) -------------------------------------------------------
    def tbptt_loss(self, frames, k1, k2):
        """The loss whose gradient is Swift's TBPTT(k1, k2) with teacher forcing: each window of k1 decoder
        steps back-propagates through its last k2 steps, re-run from the detached state (only windows reaching
        step 0 reach the encoder), and the encoder back-propagates through its last k2 steps."""
        assert self.layers == 1 and self.dirs == 1
        t = self.cfg["observed_frames"]
        z = self.embed(frames[:t])
        with torch.no_grad():
            _, states = self._states(self.encoder, z, None)
        start = max(t - k2, 0)
        first = None if start == 0 else self._detach(states[start])
        _, state = self.encoder(z[start:], first)
        targets = self.targets(frames)
        total = 0
        for role in ("reconstruction", "future"):
            decoder = getattr(self, role)
            if decoder is None:
                continue
            tg = targets[role]
            steps, batch, _ = tg.shape
            inputs = self.decoder_inputs(decoder, tg[:-1], steps, batch, tg)
            with torch.no_grad():
                _, dstates = self._states(decoder.rnn, inputs, state)
            end, outputs_from = min(k1, steps), 0
            while outputs_from < steps:
                s = max(end - k2, 0)
                init = state if s == 0 else self._detach(dstates[s])
                out, _ = decoder.rnn(inputs[s:end], init)
                logits = self.readout_of(decoder)(out[outputs_from - s:])
                total = total + self.frame_loss(logits, tg[outputs_from:end]) * (end - outputs_from) / steps
                outputs_from, end = end, min(end + k1, steps)
        return total

    @staticmethod
    def _detach(state):
        return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()

    @staticmethod
    def _states(rnn, inputs, state):
        """The state before every step (index k) and after the last (index T)."""
        states = [state]
        for k in range(inputs.shape[0]):
            _, state = rnn(inputs[k:k + 1], state)
            states.append(state)
        if states[0] is None:
            h = states[1][0] if isinstance(states[1], tuple) else states[1]
            zero = torch.zeros_like(h)
            states[0] = (zero, zero) if isinstance(states[1], tuple) else zero
        return None, states


# -- benchmark (scripts/bench.sh video) -----------------------------------------------------------------------
BENCH_PRESETS = {
    # weights/video's architecture (Sources/Bench/VideoBench.swift has the same table)
    "shipped": {"input": "pixels", "frame_size": 64, "channels": 1, "feature_dimension": 0, "feature_encoder": None,
                "cell": "lstm", "hidden_size": 512, "layers": 1, "bidirectional": False, "embedding_size": 256,
                "reconstruction": "unconditioned", "future": "unconditioned", "readout": "conv",
                "observed_frames": 10, "future_frames": 10},
}
BENCH_PRESETS["linear"] = dict(BENCH_PRESETS["shipped"], readout="linear")
BENCH_PRESETS["conditional"] = dict(BENCH_PRESETS["shipped"], hidden_size=256, reconstruction="conditional",
                                    future="conditional")


def bench(model_name="shipped", batch=16, steps=5, repeats=3, overrides=(), label="train"):
    """Training steps per second of the same model in PyTorch (zero_grad, forward, backward, clip_grad_norm_,
    Adam), best of `repeats` runs of `steps` steps; prints one JSON line like caption-bench video."""
    import json
    import time
    cfg = dict(BENCH_PRESETS[model_name])
    for item in overrides:
        key, value = item.split("=", 1)
        key = {"hidden": "hidden_size", "embedding": "embedding_size"}.get(key, key)
        cfg[key] = value if key in ("cell", "reconstruction", "future", "readout") else (value in ("1", "true") if key == "bidirectional" else int(value))
    torch.manual_seed(0)
    model = VideoAutoencoder(cfg)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    frames = (torch.rand(cfg["observed_frames"] + cfg["future_frames"], batch, model.d) < 0.1).float()

    def step():
        optimizer.zero_grad()
        loss, _ = model(frames)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 100)
        optimizer.step()

    step()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        best = min(best, (time.perf_counter() - t0) / steps)
    params = sum(p.numel() for n, p in model.named_parameters()
                 if not (n.endswith("rnn.weight_ih_l0") and not getattr(model, n.split(".")[0]).conditional))
    print(json.dumps({"bench": "video_train", "model": model_name, "mode": label, "batch": batch, "threads": torch.get_num_threads(),
                      "parameters": params, "seconds_per_step": best, "sequences_per_s": batch / best}, sort_keys=True),
          flush=True)


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(description="PyTorch video autoencoder benchmark")
    ap.add_argument("--model", default="shipped")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--label", default="train")
    ap.add_argument("overrides", nargs="*")
    a = ap.parse_args()
    bench(a.model, a.batch, a.steps, a.repeats, a.overrides, a.label)
