#!/usr/bin/env python3
"""Writes the PyTorch reference fixtures for the recurrent-layer tests (Tests/NNTests/Recurrent*Tests.swift).

Usage:  /tmp/venv/bin/python scripts/make_recurrent_fixtures.py   (writes Tests/Fixtures/recurrent/*.safetensors)

Cases (tiny sizes, torch.manual_seed(0)):
- cells.safetensors: nn.LSTMCell, nn.GRUCell, nn.RNNCell (tanh, relu) unrolled over T = 11 steps from a random
  initial state. The scalar being differentiated is  Σ_t <dout[t], h_t> + <dh_final, h_T> (+ <dc_final, c_T>),
  i.e. `dout` / `dh_final` / `dc_final` are the upstream gradients. Also the LSTM cell under truncated BPTT
  (k1, k2) = (3, 5) and (4, 4), computed by re-running each window from the detached state (see `tbptt`).
- stacks.safetensors: nn.LSTM and nn.GRU with num_layers=2, bidirectional=True, T = 10, with h_0 (and c_0) given.

Names are `<case>.<field>`; parameters keep PyTorch's own names (`lstm.weight_ih`, `lstm_bi2.weight_hh_l1_reverse`),
their gradients get a `grad.` prefix (`grad.lstm.weight_ih`). As in make_layer_fixtures.py, inputs and
parameters are drawn in float32 and the references computed in float64 from those exact values, so the
fixtures carry no float32 rounding of their own.
"""
import os

import torch
import torch.nn as nn
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Fixtures", "recurrent")
T, B, IN, H = 11, 3, 5, 6


def f32(t):
    return t.detach().to(torch.float32).contiguous().cpu()


def randn(*shape):
    """Float32 normal samples promoted to float64."""
    return torch.randn(*shape, dtype=torch.float32).to(torch.float64)


def float64_module(module):
    """The module in float64 with float32-representable parameters."""
    module = module.to(torch.float64)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(f32(p).to(torch.float64))
    return module


def store_params(tensors, case, module):
    for name, p in module.named_parameters():
        tensors[f"{case}.{name}"] = f32(p)
        tensors[f"{case}.grad.{name}"] = f32(p.grad)


def unroll(cell, x, state, lstm):
    """Runs `cell` over x (T×B×in) from `state`; returns the list of h_t and the final state."""
    hs = []
    for t in range(x.shape[0]):
        state = cell(x[t], state)
        hs.append(state[0] if lstm else state)
    return hs, state


def cell_case(tensors, case, cell, lstm):
    cell = float64_module(cell)
    x = randn(T, B, IN).requires_grad_(True)
    h0 = randn(B, H).requires_grad_(True)
    c0 = randn(B, H).requires_grad_(True) if lstm else None
    hs, final = unroll(cell, x, (h0, c0) if lstm else h0, lstm)
    out = torch.stack(hs)
    dout, dh_final = randn(T, B, H), randn(B, H)
    loss = (out * dout).sum() + (hs[-1] * dh_final).sum()
    if lstm:
        dc_final = randn(B, H)
        loss = loss + (final[1] * dc_final).sum()
    loss.backward()
    tensors.update({f"{case}.x": f32(x), f"{case}.h0": f32(h0), f"{case}.out": f32(out),
                    f"{case}.h_final": f32(hs[-1]), f"{case}.dout": f32(dout), f"{case}.dh_final": f32(dh_final),
                    f"{case}.dx": f32(x.grad), f"{case}.dh0": f32(h0.grad)})
    if lstm:
        tensors.update({f"{case}.c0": f32(c0), f"{case}.c_final": f32(final[1]), f"{case}.dc_final": f32(dc_final),
                        f"{case}.dc0": f32(c0.grad)})
    store_params(tensors, case, cell)


def tbptt(tensors, case, k1, k2):
    """LSTM cell under TBPTT(k1, k2), as documented on Swift's `TruncatedBPTT`: windows end at e_j = min(j·k1, T);
    window j takes the output gradients of steps [e_{j-1}, e_j) (plus the final-state gradients in the last
    window) and backpropagates from e_j − 1 down to max(e_j − k2, 0), starting from the detached state there."""
    cell = float64_module(nn.LSTMCell(IN, H))
    x = randn(T, B, IN).requires_grad_(True)
    h0, c0 = randn(B, H).requires_grad_(True), randn(B, H).requires_grad_(True)
    dout, dh_final, dc_final = randn(T, B, H), randn(B, H), randn(B, H)
    with torch.no_grad():  # the untruncated forward: its states are where windows restart
        states = [(h0, c0)]
        for t in range(T):
            states.append(cell(x[t], states[-1]))
    end, outputs_from = min(k1, T), 0
    while outputs_from < T:
        start = max(end - k2, 0)
        state = (h0, c0) if start == 0 else (states[start][0].clone(), states[start][1].clone())
        loss = 0
        for t in range(start, end):
            state = cell(x[t], state)
            if t >= outputs_from:
                loss = loss + (state[0] * dout[t]).sum()
        if end == T:
            loss = loss + (state[0] * dh_final).sum() + (state[1] * dc_final).sum()
        loss.backward()
        outputs_from, end = end, min(end + k1, T)
    tensors.update({f"{case}.x": f32(x), f"{case}.h0": f32(h0), f"{case}.c0": f32(c0), f"{case}.dout": f32(dout),
                    f"{case}.dh_final": f32(dh_final), f"{case}.dc_final": f32(dc_final),
                    f"{case}.dx": f32(x.grad), f"{case}.dh0": f32(h0.grad), f"{case}.dc0": f32(c0.grad),
                    f"{case}.k1": torch.tensor([k1], dtype=torch.int64), f"{case}.k2": torch.tensor([k2], dtype=torch.int64)})
    store_params(tensors, case, cell)


def stack_case(tensors, case, module, lstm, steps=10, batch=3):
    module = float64_module(module)
    layers_dirs = module.num_layers * (2 if module.bidirectional else 1)
    x = randn(steps, batch, module.input_size).requires_grad_(True)
    h0 = randn(layers_dirs, batch, module.hidden_size).requires_grad_(True)
    c0 = randn(layers_dirs, batch, module.hidden_size).requires_grad_(True) if lstm else None
    out, final = module(x, (h0, c0) if lstm else h0)
    hn = final[0] if lstm else final
    dout, dhn = randn(*out.shape), randn(*hn.shape)
    loss = (out * dout).sum() + (hn * dhn).sum()
    if lstm:
        dcn = randn(*final[1].shape)
        loss = loss + (final[1] * dcn).sum()
    loss.backward()
    tensors.update({f"{case}.x": f32(x), f"{case}.h0": f32(h0), f"{case}.out": f32(out), f"{case}.h_n": f32(hn),
                    f"{case}.dout": f32(dout), f"{case}.dh_n": f32(dhn), f"{case}.dx": f32(x.grad),
                    f"{case}.dh0": f32(h0.grad)})
    if lstm:
        tensors.update({f"{case}.c0": f32(c0), f"{case}.c_n": f32(final[1]), f"{case}.dc_n": f32(dcn),
                        f"{case}.dc0": f32(c0.grad)})
    store_params(tensors, case, module)


def main():
    torch.manual_seed(0)
    os.makedirs(OUT, exist_ok=True)
    cells = {}
    cell_case(cells, "lstm", nn.LSTMCell(IN, H), lstm=True)
    cell_case(cells, "gru", nn.GRUCell(IN, H), lstm=False)
    cell_case(cells, "rnn_tanh", nn.RNNCell(IN, H, nonlinearity="tanh"), lstm=False)
    cell_case(cells, "rnn_relu", nn.RNNCell(IN, H, nonlinearity="relu"), lstm=False)
    tbptt(cells, "tbptt_3_5", 3, 5)
    tbptt(cells, "tbptt_4_4", 4, 4)
    stacks = {}
    stack_case(stacks, "lstm_bi2", nn.LSTM(5, 4, num_layers=2, bidirectional=True), lstm=True)
    stack_case(stacks, "gru_bi2", nn.GRU(5, 4, num_layers=2, bidirectional=True), lstm=False)
    stack_case(stacks, "lstm_2", nn.LSTM(5, 4, num_layers=2), lstm=True)
    for filename, tensors in [("cells.safetensors", cells), ("stacks.safetensors", stacks)]:
        path = os.path.join(OUT, filename)
        save_file(tensors, path)
        print(f"{path}: {len(tensors)} tensors, {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
