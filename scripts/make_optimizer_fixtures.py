#!/usr/bin/env python3
"""Reference values for Adam and gradient clipping, from torch.optim.Adam and
torch.nn.utils.clip_grad_norm_ / clip_grad_value_. Writes Tests/Fixtures/optim/*.safetensors.

Run: /tmp/venv/bin/python scripts/make_optimizer_fixtures.py
"""
import os
import torch
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "Fixtures", "optim")
os.makedirs(OUT, exist_ok=True)
torch.manual_seed(0)

# Two parameters: "decoder.w" (lr 1e-3, weight decay) and "encoder.w" (its own lr 1e-4), 6 steps of
# random gradients, the second moment made to matter by varying gradient scales.
steps = 6
dec = torch.randn(5, 4)
enc = torch.randn(7)
grads_dec = torch.randn(steps, 5, 4) * torch.logspace(-3, 1, steps).view(steps, 1, 1)
grads_enc = torch.randn(steps, 7)
p_dec = torch.nn.Parameter(dec.clone())
p_enc = torch.nn.Parameter(enc.clone())
opt = torch.optim.Adam([{"params": [p_dec]}, {"params": [p_enc], "lr": 1e-4}],
                       lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
after_dec, after_enc = [], []
for t in range(steps):
    p_dec.grad = grads_dec[t].clone()
    p_enc.grad = grads_enc[t].clone()
    opt.step()
    after_dec.append(p_dec.detach().clone())
    after_enc.append(p_enc.detach().clone())
save_file({
    "decoder.w.initial": dec, "encoder.w.initial": enc,
    "decoder.w.grads": grads_dec, "encoder.w.grads": grads_enc,
    "decoder.w.after": torch.stack(after_dec), "encoder.w.after": torch.stack(after_enc),
}, os.path.join(OUT, "adam.safetensors"))

# Clipping: the same two gradients, by global norm (clipping and not clipping) and by value.
g1, g2 = torch.randn(5, 4) * 3, torch.randn(7) * 3
out = {"g1": g1, "g2": g2}
for name, max_norm in (("norm_clipped", 2.0), ("norm_unclipped", 1000.0)):
    a, b = torch.nn.Parameter(torch.zeros(5, 4)), torch.nn.Parameter(torch.zeros(7))
    a.grad, b.grad = g1.clone(), g2.clone()
    total = torch.nn.utils.clip_grad_norm_([a, b], max_norm)
    out[f"{name}.g1"], out[f"{name}.g2"], out[f"{name}.total_norm"] = a.grad, b.grad, total.reshape(1)
a, b = torch.nn.Parameter(torch.zeros(5, 4)), torch.nn.Parameter(torch.zeros(7))
a.grad, b.grad = g1.clone(), g2.clone()
torch.nn.utils.clip_grad_value_([a, b], 1.5)
out["value.g1"], out["value.g2"] = a.grad, b.grad
save_file(out, os.path.join(OUT, "clip.safetensors"))
print("wrote", OUT)
