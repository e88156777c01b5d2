#!/usr/bin/env python3
"""Writes the PyTorch reference for the trainer's optimisation step (Tests/CaptioningTests/TrainerParityTests).

Usage:  /tmp/venv/bin/python scripts/make_trainer_fixtures.py   (writes Tests/Fixtures/trainer/steps.safetensors)

Ten training steps of the tutorial's DecoderWithAttention (re-implemented in scripts/make_decoder_fixtures.py,
dropout off) on given features, each step as the tutorial's train.py does it, except that the gradients are clipped
by global norm:

    scores, caps_sorted, decode_lengths, alphas, _ = decoder(features, captions, lengths)
    loss = CrossEntropy(packed scores, packed targets) + alpha_c * ((1 - alphas.sum(1)) ** 2).mean()
    optimizer.zero_grad(); loss.backward()
    torch.nn.utils.clip_grad_norm_(decoder.parameters(), MAX_NORM)
    optimizer.step()                                   # torch.optim.Adam(lr=LR)

Two cases:
  teacher  — teacher forcing (the tutorial);
  sampled  — scheduled sampling with ε = 0 and the model's argmax: every input after <start> is the argmax of the
             previous step's scores, detached (no gradient through the choice), as the Swift trainer feeds it.

Float32 throughout, one thread. Sizes as the decoder fixtures: L = 9, D = 16, attention 8, embed 8, hidden 12,
vocab 20; 5 captions per step with distinct lengths in 3..10 (so the length sort has no ties).

Tensors (`<case>.` prefix): `init.<state_dict name>` (the initial parameters: PyTorch defaults plus the tutorial's
init_weights), `step<k>.features` (5×L×D), `step<k>.captions` (5×10 int64, <pad> = 0 after each length),
`step<k>.lengths` (int64), `losses` (10), `grad_norms` (10, before clipping), `final.<state_dict name>`.
"""
import os
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch.nn.utils.rnn import pack_padded_sequence

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_decoder_fixtures import DecoderWithAttention, L, D, A, E, H, V  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Fixtures", "trainer")
STEPS, BATCH, MAXLEN = 10, 5, 10
LR, MAX_NORM, ALPHA_C = 3e-3, 0.5, 1.0


def forward_sampled(dec, encoder_out, captions, lengths):
    """DecoderWithAttention.forward, feeding the argmax of the previous step's scores after <start>."""
    batch_size = encoder_out.size(0)
    lengths, sort_ind = lengths.sort(dim=0, descending=True)
    encoder_out, captions = encoder_out[sort_ind], captions[sort_ind]
    mean = encoder_out.mean(dim=1)
    h, c = dec.init_h(mean), dec.init_c(mean)
    decode_lengths = (lengths - 1).tolist()
    T = max(decode_lengths)
    predictions = torch.zeros(batch_size, T, dec.vocab_size)
    alphas = torch.zeros(batch_size, T, encoder_out.size(1))
    for t in range(T):
        bt = sum(l > t for l in decode_lengths)
        tokens = captions[:bt, 0] if t == 0 else predictions[:bt, t - 1].argmax(dim=1).detach()
        awe, alpha = dec.attention(encoder_out[:bt], h[:bt])
        awe = torch.sigmoid(dec.f_beta(h[:bt])) * awe
        h, c = dec.decode_step(torch.cat([dec.embedding(tokens), awe], dim=1), (h[:bt], c[:bt]))
        predictions[:bt, t, :] = dec.fc(dec.dropout(h))
        alphas[:bt, t, :] = alpha
    return predictions, captions, decode_lengths, alphas, sort_ind


def case(tensors, name, sampled):
    dec = DecoderWithAttention(A, E, H, V, D)
    with torch.no_grad():  # the tutorial's init_weights
        dec.embedding.weight.uniform_(-0.1, 0.1)
        dec.fc.bias.fill_(0)
        dec.fc.weight.uniform_(-0.1, 0.1)
    p = f"{name}."
    for pname, param in dec.named_parameters():
        tensors[p + "init." + pname] = param.detach().clone().contiguous()
    optimizer = torch.optim.Adam(dec.parameters(), lr=LR)
    losses, norms = [], []
    for k in range(STEPS):
        features = torch.randn(BATCH, L, D)
        lengths = torch.randperm(MAXLEN - 2)[:BATCH] + 3
        captions = torch.zeros(BATCH, MAXLEN, dtype=torch.int64)
        for i, n in enumerate(lengths.tolist()):
            captions[i, 0] = V - 2  # <start> in a 16-word vocabulary: words 1..16, <unk> 17, <start> 18, <end> 19
            captions[i, 1:n - 1] = torch.randint(1, V - 3, (n - 2,))
            captions[i, n - 1] = V - 1
        tensors[p + f"step{k}.features"] = features.clone()
        tensors[p + f"step{k}.captions"] = captions.clone()
        tensors[p + f"step{k}.lengths"] = lengths.to(torch.int64)
        if sampled:
            scores, caps_sorted, decode_lengths, alphas, _ = forward_sampled(dec, features, captions, lengths)
        else:
            scores, caps_sorted, decode_lengths, alphas, _ = dec(features, captions, lengths)
        targets = caps_sorted[:, 1:]
        packed_scores = pack_padded_sequence(scores, decode_lengths, batch_first=True).data
        packed_targets = pack_padded_sequence(targets, decode_lengths, batch_first=True).data
        loss = F.cross_entropy(packed_scores, packed_targets) + ALPHA_C * ((1.0 - alphas.sum(dim=1)) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        norms.append(float(torch.nn.utils.clip_grad_norm_(dec.parameters(), MAX_NORM)))
        optimizer.step()
        losses.append(loss.item())
    tensors[p + "losses"] = torch.tensor(losses, dtype=torch.float32)
    tensors[p + "grad_norms"] = torch.tensor(norms, dtype=torch.float32)
    for pname, param in dec.named_parameters():
        tensors[p + "final." + pname] = param.detach().clone().contiguous()
    print(name, "losses", [round(x, 5) for x in losses])


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    tensors = {}
    case(tensors, "teacher", sampled=False)
    case(tensors, "sampled", sampled=True)
    path = os.path.join(OUT, "steps.safetensors")
    save_file(tensors, path)
    print(f"{path}: {len(tensors)} tensors, {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
