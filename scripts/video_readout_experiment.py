"""Experiment: does a convolutional frame readout beat the linear one? (PyTorch only; not a parity reference)

    caption video synth --out /tmp/vtrain --count 5000 --seed 1
    caption video synth --out /tmp/test999 --count 200 --seed 999
    python scripts/video_readout_experiment.py linear|B|C|D STEPS [TRAIN_DIR TEST_DIR]

The composite model of weights/video (LSTM H = 512, frame embedding 256, unconditioned decoders) with
PyTorch's default initialisation, batch 16, Adam lr 2e-3 -> 1e-4 cosine, clip 100, 2 threads; prints
the free-running BCE per frame on the test set. Readouts: `linear` (the shipped Linear(H, 4096)); `B`
Linear -> 16x16x16, ReLU, nearest x2, conv3x3 16->16, ReLU, nearest x2, conv3x3 16->1; `C` and `D` wider
variants. The frames are cached as .npy beside the folders.
"""
import sys, time, os, glob, math, numpy as np, torch, torch.nn as nn, torch.nn.functional as F
from PIL import Image
torch.set_num_threads(2)
def load(d, n):
    seqs = sorted(glob.glob(d + "/seq_*"))[:n]
    out = np.zeros((len(seqs), 20, 64, 64), np.uint8)
    for i, s in enumerate(seqs):
        fs = sorted(glob.glob(s + "/*.png"))
        for t, f in enumerate(fs[:20]): out[i, t] = np.array(Image.open(f).convert("L"))
    return out
def cached(d, n):
    p = d + f".{n}.npy"
    if os.path.exists(p): return np.load(p)
    a = load(d, n); np.save(p, a); return a
class Readout(nn.Module):
    def __init__(self, kind, h):
        super().__init__(); self.kind = kind
        if kind == "linear": self.fc = nn.Linear(h, 4096)
        elif kind == "B":
            self.fc = nn.Linear(h, 16 * 16 * 16); self.c1 = nn.Conv2d(16, 16, 3, padding=1); self.c2 = nn.Conv2d(16, 1, 3, padding=1)
        elif kind == "C":
            self.fc = nn.Linear(h, 64 * 8 * 8); self.c1 = nn.Conv2d(64, 32, 3, padding=1); self.c2 = nn.Conv2d(32, 16, 3, padding=1); self.c3 = nn.Conv2d(16, 1, 3, padding=1)
        elif kind == "D":  # 32ch at 16x16, then 16ch 32x32, 1ch 64x64
            self.fc = nn.Linear(h, 32 * 16 * 16); self.c1 = nn.Conv2d(32, 16, 3, padding=1); self.c2 = nn.Conv2d(16, 1, 3, padding=1)
    def forward(self, x):
        shp = x.shape[:-1]; x = x.reshape(-1, x.shape[-1])
        if self.kind == "linear": y = self.fc(x)
        else:
            up = lambda t: F.interpolate(t, scale_factor=2, mode="nearest")
            if self.kind in ("B", "D"):
                c = 16 if self.kind == "B" else 32
                t = F.relu(self.fc(x)).view(-1, c, 16, 16)
                t = F.relu(self.c1(up(t))); y = self.c2(up(t))
            else:
                t = F.relu(self.fc(x)).view(-1, 64, 8, 8)
                t = F.relu(self.c1(up(t))); t = F.relu(self.c2(up(t))); y = self.c3(up(t))
            y = y.reshape(-1, 4096)
        return y.reshape(*shp, 4096)
class Model(nn.Module):
    def __init__(self, kind, h=512, e=256):
        super().__init__()
        self.embed = nn.Linear(4096, e); self.enc = nn.LSTM(e, h)
        self.rec = nn.LSTM(1, h); self.fut = nn.LSTM(1, h)
        self.rr = Readout(kind, h); self.fr = Readout(kind, h)
    def forward(self, fr):  # fr: 20×B×4096
        _, st = self.enc(self.embed(fr[:10]))
        z = fr.new_zeros(10, fr.shape[1], 1)
        r, _ = self.rec(z, st); f, _ = self.fut(z, st)
        return self.rr(r).flip(0), self.fr(f)
def bce(lg, tg): return F.binary_cross_entropy_with_logits(lg, tg, reduction="sum").item() / (tg.shape[0] * tg.shape[1])
kind, steps = sys.argv[1], int(sys.argv[2])
train_dir, test_dir = (sys.argv[3:5] if len(sys.argv) > 4 else ("/tmp/vtrain", "/tmp/test999"))
train = cached(train_dir, 5000); test = cached(test_dir, 200)
torch.manual_seed(1)
m = Model(kind)
opt = torch.optim.Adam(m.parameters(), lr=2e-3)
rng = np.random.default_rng(1); t0 = time.time()
for s in range(steps):
    lr = 1e-4 + 0.5 * (2e-3 - 1e-4) * (1 + math.cos(math.pi * s / steps))
    for g in opt.param_groups: g["lr"] = lr
    idx = rng.integers(0, len(train), 16)
    fr = torch.from_numpy(train[idx]).float().div(255).permute(1, 0, 2, 3).reshape(20, 16, 4096)
    r, f = m(fr)
    loss = (F.binary_cross_entropy_with_logits(r, fr[:10], reduction="sum") + F.binary_cross_entropy_with_logits(f, fr[10:], reduction="sum")) / 160
    opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(m.parameters(), 100); opt.step()
    if s % 250 == 0: print(s, round(loss.item(), 1), round(time.time() - t0), flush=True)
with torch.no_grad():
    fr = torch.from_numpy(test).float().div(255).permute(1, 0, 2, 3).reshape(20, -1, 4096)
    r, f = m(fr)
    print(kind, steps, "recon", bce(r, fr[:10]), "future", bce(f, fr[10:]), "secs", round(time.time() - t0), flush=True)
