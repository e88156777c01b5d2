#!/usr/bin/env python3
"""Writes the PyTorch reference fixtures for the attention decoder (Tests/CaptioningTests/AttentionDecoder*Tests).

Usage:  /tmp/venv/bin/python scripts/make_decoder_fixtures.py   (writes Tests/Fixtures/decoder/*.safetensors)

The decoder below re-implements sgrvinod's a-PyTorch-Tutorial-to-Image-Captioning `DecoderWithAttention`
(models.py) and its loss (train.py) so that no tutorial code is needed:

    Attention:  att1 = encoder_att(a)  (B×L×A),  att2 = decoder_att(h)  (B×A)
                e = full_att(relu(att1 + att2[:, None]))  (B×L),  α = softmax_L(e),  z = Σ_l α_l a_l
    step t:     gate = σ(f_beta(h)),  (h, c) = decode_step([embedding(y_t) ; gate ⊙ z], (h, c))
                scores_t = fc(dropout(h))
    h0 = init_h(mean_l a_l),  c0 = init_c(mean_l a_l)
    captions are sorted by length (descending) and step t only runs the batch_size_t captions with
    decode length (= caption length − 1) > t
    loss = CrossEntropy(pack_padded_sequence(scores, decode_lengths).data, targets packed alike)
           + alpha_c · ((1 − Σ_t α_t)²).mean()

Two cases: `tutorial` (as above) and `paper` (tanh in the attention MLP, scalar gate β = σ(f_beta(h)), f_beta 1×H),
the options `AttentionDecoderConfig` offers. Dropout is 0 (the fixtures must be deterministic). Small dims:
L = 9 (3×3 grid), D = 16, attention 8, embed 8, hidden 12, vocab 20, batch 3 with caption lengths 6, 9, 4
(unsorted, so the sort is exercised). Parameters and inputs are float32 values; the reference runs in float64.

Tensor names (`<case>.` prefix): the state_dict names (`attention.encoder_att.weight`, `decode_step.weight_ih`,
…), `grad.<state_dict name>`, `encoder_out` (B×L×D, caller order), `grad.encoder_out`, `encoded_captions`
(B×maxlen int64, caller order), `caption_lengths` (B int64), `sort_ind` (int64), `scores` (B×T×V and `alphas`
B×T×L, in the tutorial's sorted order, zero past each decode length), `loss`, `cross_entropy`, `alpha_penalty`.
"""
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file
from torch.nn.utils.rnn import pack_padded_sequence

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Fixtures", "decoder")
L, D, A, E, H, V = 9, 16, 8, 8, 12, 20
ALPHA_C = 1.0


class Attention(nn.Module):
    def __init__(self, encoder_dim, decoder_dim, attention_dim, tanh):
        super().__init__()
        self.encoder_att = nn.Linear(encoder_dim, attention_dim)
        self.decoder_att = nn.Linear(decoder_dim, attention_dim)
        self.full_att = nn.Linear(attention_dim, 1)
        self.act = torch.tanh if tanh else F.relu

    def forward(self, encoder_out, decoder_hidden):
        att1 = self.encoder_att(encoder_out)                       # B×L×A
        att2 = self.decoder_att(decoder_hidden)                    # B×A
        att = self.full_att(self.act(att1 + att2.unsqueeze(1))).squeeze(2)  # B×L
        alpha = F.softmax(att, dim=1)
        return (encoder_out * alpha.unsqueeze(2)).sum(dim=1), alpha


class DecoderWithAttention(nn.Module):
    def __init__(self, attention_dim, embed_dim, decoder_dim, vocab_size, encoder_dim, paper=False):
        super().__init__()
        self.vocab_size = vocab_size
        self.attention = Attention(encoder_dim, decoder_dim, attention_dim, tanh=paper)
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.dropout = nn.Dropout(p=0.0)
        self.decode_step = nn.LSTMCell(embed_dim + encoder_dim, decoder_dim, bias=True)
        self.init_h = nn.Linear(encoder_dim, decoder_dim)
        self.init_c = nn.Linear(encoder_dim, decoder_dim)
        self.f_beta = nn.Linear(decoder_dim, 1 if paper else encoder_dim)
        self.fc = nn.Linear(decoder_dim, vocab_size)

    def forward(self, encoder_out, encoded_captions, caption_lengths):
        batch_size = encoder_out.size(0)
        caption_lengths, sort_ind = caption_lengths.sort(dim=0, descending=True)
        encoder_out = encoder_out[sort_ind]
        encoded_captions = encoded_captions[sort_ind]
        embeddings = self.embedding(encoded_captions)
        mean = encoder_out.mean(dim=1)
        h, c = self.init_h(mean), self.init_c(mean)
        decode_lengths = (caption_lengths - 1).tolist()
        T = max(decode_lengths)
        predictions = torch.zeros(batch_size, T, self.vocab_size, dtype=encoder_out.dtype)
        alphas = torch.zeros(batch_size, T, encoder_out.size(1), dtype=encoder_out.dtype)
        for t in range(T):
            bt = sum(l > t for l in decode_lengths)
            awe, alpha = self.attention(encoder_out[:bt], h[:bt])
            gate = torch.sigmoid(self.f_beta(h[:bt]))
            awe = gate * awe
            h, c = self.decode_step(torch.cat([embeddings[:bt, t, :], awe], dim=1), (h[:bt], c[:bt]))
            predictions[:bt, t, :] = self.fc(self.dropout(h))
            alphas[:bt, t, :] = alpha
        return predictions, encoded_captions, decode_lengths, alphas, sort_ind


def f32(t):
    return t.detach().to(torch.float32).contiguous().cpu()


def case(tensors, name, paper):
    decoder = DecoderWithAttention(A, E, H, V, D, paper=paper).to(torch.float64)
    with torch.no_grad():
        for p in decoder.parameters():  # U(-0.5, 0.5): float32 values, larger than the defaults so scores and α are far from uniform
            p.copy_((torch.rand(p.shape, dtype=torch.float32) - 0.5).to(torch.float64))
    encoder_out = torch.randn(3, L, D, dtype=torch.float32).to(torch.float64).requires_grad_(True)
    lengths = torch.tensor([6, 9, 4])
    captions = torch.zeros(3, 9, dtype=torch.int64)
    for i, n in enumerate(lengths.tolist()):
        captions[i, :n] = torch.randint(1, V, (n,))
        captions[i, n:] = 0  # <pad>; never read
    scores, caps_sorted, decode_lengths, alphas, sort_ind = decoder(encoder_out, captions, lengths)
    targets = caps_sorted[:, 1:]
    packed_scores = pack_padded_sequence(scores, decode_lengths, batch_first=True).data
    packed_targets = pack_padded_sequence(targets, decode_lengths, batch_first=True).data
    cross_entropy = F.cross_entropy(packed_scores, packed_targets)
    alpha_penalty = ((1.0 - alphas.sum(dim=1)) ** 2).mean()
    loss = cross_entropy + ALPHA_C * alpha_penalty
    loss.backward()
    p = f"{name}."
    for pname, param in decoder.named_parameters():
        tensors[p + pname] = f32(param)
        tensors[p + "grad." + pname] = f32(param.grad)
    tensors.update({p + "encoder_out": f32(encoder_out), p + "grad.encoder_out": f32(encoder_out.grad),
                    p + "encoded_captions": captions, p + "caption_lengths": lengths.to(torch.int64),
                    p + "sort_ind": sort_ind.to(torch.int64), p + "scores": f32(scores), p + "alphas": f32(alphas),
                    p + "loss": f32(loss.reshape(1)), p + "cross_entropy": f32(cross_entropy.reshape(1)),
                    p + "alpha_penalty": f32(alpha_penalty.reshape(1))})


def main():
    torch.manual_seed(0)
    os.makedirs(OUT, exist_ok=True)
    tensors = {}
    case(tensors, "tutorial", paper=False)
    case(tensors, "paper", paper=True)
    path = os.path.join(OUT, "decoder.safetensors")
    save_file(tensors, path)
    print(f"{path}: {len(tensors)} tensors, {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
