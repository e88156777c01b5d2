#!/usr/bin/env python3
"""PyTorch references for inference: the tutorial's beam search, teacher-forced scores, and a converted
tutorial checkpoint end to end.

    /tmp/venv/bin/python scripts/make_captioner_fixtures.py            # Tests/Fixtures/captioner/ (small, committed)
    /tmp/venv/bin/python scripts/make_captioner_fixtures.py --e2e DIR  # + a real ResNet-18 tutorial checkpoint,
                                                                       #   converted into DIR (not committed)

1. Tests/Fixtures/captioner/search.safetensors: a tiny tutorial `DecoderWithAttention` (random weights, bare
   state_dict names), `encoder_out` for 3 images (3×L×D, L = 3×3) and, for each image i and beam k in 1, 3, 5,
   the tutorial's `caption_image_beam_search` result (re-implemented below line for line, minus the encoder):
   `beam{k}.image{i}.seq` (I64, `<start>` … `<end>`), `.score` (the cumulative log-probability it ranks by) and
   `.alphas` (T×L, one α per generated word). Plus teacher-forced scores of two captions per image:
   `score.image{i}.caption{j}` (I64, `<start>` w… `<end>`) and `.token_log_probs` (log_softmax(fc(h))[target]).
   The word map is the tutorial layout with 10 words: <pad> 0, words 1..10, <unk> 11, <start> 12, <end> 13.
   Computed in float64 from float32 weights; `min_margin` is the smallest gap between the k-th and (k+1)-th
   candidate over all steps, so that a float32 implementation cannot pick differently.

2. Tests/Fixtures/captioner/tiny_model/: a complete model folder small enough to commit (a compact encoder
   with channels 8, 16, strides 2, 2, 32×32 input pooled to 4×4, and a decoder like the one above for its
   16-d features; random weights, BatchNorm statistics included), `tiny_image.png`, and `tiny_expected.json`:
   the PyTorch pipeline's answer (Pillow bilinear resize, normalisation, encoder, `caption_image_beam_search`
   with k = 3 and k = 1, teacher-forced scores of one caption). Captioner and CLI tests use this folder.

3. --e2e DIR: a tutorial checkpoint with torchvision ResNet-18 (random weights; the tutorial's Encoder is
   `resnet.*` = children[:-2] + AdaptiveAvgPool2d(14)) and a decoder for its 512-d features, pickled as
   `models.Encoder` / `models.DecoderWithAttention` objects the way the tutorial saves them, plus a WORDMAP.
   It runs scripts/convert_checkpoint.py into DIR/model, draws DIR/image.png, and writes DIR/reference.json:
   the full PyTorch pipeline (Pillow bilinear 256×256, ImageNet normalisation, encoder, beam search k = 3 and
   k = 1) tokens and scores. CaptionerEndToEndTests runs on it when CAPTION_E2E=DIR is set.
"""
import argparse
import json
import os
import subprocess
import sys
import types

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "Tests", "Fixtures", "captioner")
GRID, D, A, E, H = 3, 16, 8, 8, 12
WORDS = ["a", "red", "blue", "circle", "square", "above", "below", "the", "of", "two"]


def word_map_for(words):
    wm = {w: i + 1 for i, w in enumerate(words)}
    wm["<unk>"] = len(wm) + 1
    wm["<start>"] = len(wm) + 1
    wm["<end>"] = len(wm) + 1
    wm["<pad>"] = 0
    return wm


# ---- the tutorial's models.py (decoder side), as in sgrvinod/a-PyTorch-Tutorial-to-Image-Captioning ----

class Attention(nn.Module):
    def __init__(self, encoder_dim, decoder_dim, attention_dim):
        super().__init__()
        self.encoder_att = nn.Linear(encoder_dim, attention_dim)
        self.decoder_att = nn.Linear(decoder_dim, attention_dim)
        self.full_att = nn.Linear(attention_dim, 1)
        self.relu = nn.ReLU()
        self.softmax = nn.Softmax(dim=1)

    def forward(self, encoder_out, decoder_hidden):
        att1 = self.encoder_att(encoder_out)
        att2 = self.decoder_att(decoder_hidden)
        att = self.full_att(self.relu(att1 + att2.unsqueeze(1))).squeeze(2)
        alpha = self.softmax(att)
        attention_weighted_encoding = (encoder_out * alpha.unsqueeze(2)).sum(dim=1)
        return attention_weighted_encoding, alpha


class DecoderWithAttention(nn.Module):
    def __init__(self, attention_dim, embed_dim, decoder_dim, vocab_size, encoder_dim=2048, dropout=0.5):
        super().__init__()
        self.encoder_dim = encoder_dim
        self.attention_dim = attention_dim
        self.embed_dim = embed_dim
        self.decoder_dim = decoder_dim
        self.vocab_size = vocab_size
        self.dropout = dropout
        self.attention = Attention(encoder_dim, decoder_dim, attention_dim)
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.dropout = nn.Dropout(p=self.dropout)
        self.decode_step = nn.LSTMCell(embed_dim + encoder_dim, decoder_dim, bias=True)
        self.init_h = nn.Linear(encoder_dim, decoder_dim)
        self.init_c = nn.Linear(encoder_dim, decoder_dim)
        self.f_beta = nn.Linear(decoder_dim, encoder_dim)
        self.sigmoid = nn.Sigmoid()
        self.fc = nn.Linear(decoder_dim, vocab_size)

    def init_hidden_state(self, encoder_out):
        mean_encoder_out = encoder_out.mean(dim=1)
        return self.init_h(mean_encoder_out), self.init_c(mean_encoder_out)


class Encoder(nn.Module):
    def __init__(self, encoded_image_size=14):
        super().__init__()
        import torchvision
        resnet = torchvision.models.resnet18(weights=None)  # the tutorial uses resnet101(pretrained=True)
        self.resnet = nn.Sequential(*list(resnet.children())[:-2])
        self.adaptive_pool = nn.AdaptiveAvgPool2d((encoded_image_size, encoded_image_size))

    def forward(self, images):
        out = self.adaptive_pool(self.resnet(images))
        return out.permute(0, 2, 3, 1)


# ---- the tutorial's caption.py: caption_image_beam_search, from `encoder_out` on ----

def caption_image_beam_search(decoder, encoder_out, word_map, beam_size, margins=None, max_steps=51):
    """encoder_out: 1×enc×enc×D. Returns (seq, score, alphas) of the best completed hypothesis; None when none
    completed within `max_steps` (the tutorial raises there; scripts/bench_reference.py masks <end> on purpose).
    `max_steps` 51 is the tutorial's `if step > 50: break`. `margins`, when a list, collects the gap between the
    k-th and (k+1)-th candidate of every step."""
    k = beam_size
    vocab_size = len(word_map)
    enc_image_size = encoder_out.size(1)
    encoder_dim = encoder_out.size(3)
    encoder_out = encoder_out.view(1, -1, encoder_dim)
    num_pixels = encoder_out.size(1)
    encoder_out = encoder_out.expand(k, num_pixels, encoder_dim)
    k_prev_words = torch.LongTensor([[word_map['<start>']]] * k)
    seqs = k_prev_words
    top_k_scores = torch.zeros(k, 1, dtype=encoder_out.dtype)
    seqs_alpha = torch.ones(k, 1, enc_image_size, enc_image_size, dtype=encoder_out.dtype)
    complete_seqs, complete_seqs_alpha, complete_seqs_scores = [], [], []
    step = 1
    h, c = decoder.init_hidden_state(encoder_out)
    while True:
        embeddings = decoder.embedding(k_prev_words).squeeze(1)
        awe, alpha = decoder.attention(encoder_out, h)
        alpha = alpha.view(-1, enc_image_size, enc_image_size)
        gate = decoder.sigmoid(decoder.f_beta(h))
        awe = gate * awe
        h, c = decoder.decode_step(torch.cat([embeddings, awe], dim=1), (h, c))
        scores = decoder.fc(h)
        scores = F.log_softmax(scores, dim=1)
        scores = top_k_scores.expand_as(scores) + scores
        flat = scores[0] if step == 1 else scores.view(-1)
        top_k_scores, top_k_words = flat.topk(k, 0, True, True)
        if margins is not None and flat.numel() > k:  # how close the (k+1)-th candidate came
            margins.append((top_k_scores[-1] - flat.topk(k + 1)[0][-1]).item())
        prev_word_inds = torch.div(top_k_words, vocab_size, rounding_mode="floor")
        next_word_inds = top_k_words % vocab_size
        seqs = torch.cat([seqs[prev_word_inds], next_word_inds.unsqueeze(1)], dim=1)
        seqs_alpha = torch.cat([seqs_alpha[prev_word_inds], alpha[prev_word_inds].unsqueeze(1)], dim=1)
        incomplete_inds = [ind for ind, next_word in enumerate(next_word_inds) if next_word != word_map['<end>']]
        complete_inds = list(set(range(len(next_word_inds))) - set(incomplete_inds))
        if len(complete_inds) > 0:
            complete_seqs.extend(seqs[complete_inds].tolist())
            complete_seqs_alpha.extend(seqs_alpha[complete_inds].tolist())
            complete_seqs_scores.extend(top_k_scores[complete_inds])
        k -= len(complete_inds)
        if k == 0:
            break
        seqs = seqs[incomplete_inds]
        seqs_alpha = seqs_alpha[incomplete_inds]
        h = h[prev_word_inds[incomplete_inds]]
        c = c[prev_word_inds[incomplete_inds]]
        encoder_out = encoder_out[prev_word_inds[incomplete_inds]]
        top_k_scores = top_k_scores[incomplete_inds].unsqueeze(1)
        k_prev_words = next_word_inds[incomplete_inds].unsqueeze(1)
        if step >= max_steps:
            break
        step += 1
    if not complete_seqs_scores:
        return None
    i = complete_seqs_scores.index(max(complete_seqs_scores))
    return complete_seqs[i], complete_seqs_scores[i].item(), complete_seqs_alpha[i]


def teacher_forced_log_probs(decoder, encoder_out, seq):
    """log p(seq[t+1] | seq[..t], image) for t = 0 … len − 2 (dropout off). encoder_out: 1×L×D."""
    h, c = decoder.init_hidden_state(encoder_out)
    out = []
    for t in range(len(seq) - 1):
        emb = decoder.embedding(torch.tensor([seq[t]]))
        awe, _ = decoder.attention(encoder_out, h)
        awe = decoder.sigmoid(decoder.f_beta(h)) * awe
        h, c = decoder.decode_step(torch.cat([emb, awe], dim=1), (h, c))
        out.append(F.log_softmax(decoder.fc(h), dim=1)[0, seq[t + 1]].item())
    return out


def random_decoder(encoder_dim, vocab_size, spread):
    dec = DecoderWithAttention(A, E, H, vocab_size, encoder_dim=encoder_dim).eval()
    with torch.no_grad():
        for p in dec.parameters():  # float32 values; wide enough that α and the word scores are far from uniform
            p.copy_((torch.rand(p.shape) - 0.5) * 2 * spread)
    return dec


def add_end_counter(dec, end):
    """Random weights rarely end a caption at a sensible length: either <end> is likely at once or never. Hidden
    unit 0 becomes a step counter (gates saturated open, constant candidate, so c_t ≈ −1 + 0.2·t and
    h_t = tanh(c_t)) that only the <end> logit reads: p(<end>) is tiny at first and grows over a few steps,
    at a moment that still depends on the image and the words."""
    nh = dec.decoder_dim
    with torch.no_grad():
        for gate, bias in ((0, 5.0), (1, 5.0), (2, 0.2), (3, 5.0)):  # i, f, g, o rows of unit 0
            r = gate * nh
            dec.decode_step.weight_ih[r].zero_()
            dec.decode_step.weight_hh[r].zero_()
            dec.decode_step.bias_ih[r] = bias
            dec.decode_step.bias_hh[r] = 0.0
        dec.init_c.weight[0].zero_()
        dec.init_c.bias[0] = -1.0
        dec.fc.weight[:, 0] = 0.0
        dec.fc.weight[end, 0] = 3.0
        dec.fc.bias[end] = -2.0


def make_search_fixture():
    torch.manual_seed(7)
    wm = word_map_for(WORDS)
    dec = random_decoder(D, len(wm), spread=0.5)
    add_end_counter(dec, wm["<end>"])
    encoder_out = torch.randn(3, GRID * GRID, D)
    dec64 = dec.double()
    tensors = {name: p.detach().float().contiguous() for name, p in dec64.state_dict().items()}
    tensors["encoder_out"] = encoder_out.contiguous()
    margins = []
    lengths = []
    for i in range(3):
        enc = encoder_out[i:i + 1].double().view(1, GRID, GRID, D)
        for k in (1, 3, 5):
            seq, score, alphas = caption_image_beam_search(dec64, enc, wm, k, margins)
            lengths.append(len(seq) - 2)
            p = f"beam{k}.image{i}."
            tensors[p + "seq"] = torch.tensor(seq, dtype=torch.int64)
            tensors[p + "score"] = torch.tensor([score], dtype=torch.float32)
            tensors[p + "alphas"] = torch.tensor(alphas[1:], dtype=torch.float64).view(len(seq) - 1, -1).float()
        captions = [[wm["<start>"], wm["a"], wm["red"], wm["circle"], wm["<end>"]],
                    [wm["<start>"], wm["two"], wm["<unk>"], wm["above"], wm["the"], wm["square"], wm["<end>"]]]
        for j, seq in enumerate(captions):
            lp = teacher_forced_log_probs(dec64, encoder_out[i:i + 1].double(), seq)
            tensors[f"score.image{i}.caption{j}"] = torch.tensor(seq, dtype=torch.int64)
            tensors[f"score.image{i}.caption{j}.token_log_probs"] = torch.tensor(lp, dtype=torch.float32)
    tensors["min_margin"] = torch.tensor([min(margins)], dtype=torch.float32)
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "search.safetensors")
    save_file(tensors, path)
    with open(os.path.join(OUT, "vocab.json"), "w") as f:
        json.dump(wm, f)
    print(f"{path}: {len(tensors)} tensors, {os.path.getsize(path)} bytes; caption lengths {lengths}, "
          f"smallest top-k margin {min(margins):.2e}")


class ConvBNReLU(nn.Module):
    """One layer of the compact encoder (Sources/Vision/Architecture.swift, CompactNetSpec)."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class CompactEncoder(nn.Module):
    """The compact net then the tutorial's adaptive pool and permute: N×3×S×S → N×H'×W'×D."""

    def __init__(self, channels, strides, pool):
        super().__init__()
        self.layers = nn.ModuleList(ConvBNReLU(cin, cout, s) for cin, cout, s in zip([3] + channels, channels, strides))
        self.pool = nn.AdaptiveAvgPool2d(pool)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return self.pool(x).permute(0, 2, 3, 1)


def randomise_batchnorm(model):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)


def scene_image(width, height, seed):
    """Flat background, a few discs and boxes, a little noise."""
    import numpy as np
    from PIL import Image, ImageDraw
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (width, height), tuple(int(v) for v in rng.integers(0, 256, 3)))
    draw = ImageDraw.Draw(img)
    for i in range(5):
        x, y, r = int(rng.integers(0, width)), int(rng.integers(0, height)), int(rng.integers(4, max(5, width // 4)))
        (draw.ellipse if i % 2 else draw.rectangle)([x - r, y - r, x + r, y + r], fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    arr = np.asarray(img).astype(np.int16) + rng.integers(-6, 7, (height, width, 3))
    return Image.fromarray(arr.clip(0, 255).astype(np.uint8))


def pillow_input(path, size, mean, std):
    """The tutorial's preprocessing with Pillow's bilinear resize: size×size, /255, normalise. 1×3×S×S float32."""
    import numpy as np
    from PIL import Image
    x = np.asarray(Image.open(path).convert("RGB").resize((size, size), Image.BILINEAR), dtype=np.float32)
    x = torch.from_numpy(x / np.float32(255.0)).permute(2, 0, 1)
    mean, std = torch.tensor(mean), torch.tensor(std)
    return ((x - mean[:, None, None]) / std[:, None, None]).unsqueeze(0)


def make_tiny_model():
    torch.manual_seed(11)
    wm = word_map_for(WORDS)
    channels, strides, size, pool = [8, 16], [2, 2], 32, 4
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    encoder = CompactEncoder(channels, strides, pool)
    randomise_batchnorm(encoder)
    encoder.eval()
    decoder = random_decoder(channels[-1], len(wm), spread=0.5)
    add_end_counter(decoder, wm["<end>"])
    folder = os.path.join(OUT, "tiny_model")
    os.makedirs(folder, exist_ok=True)
    config = {
        "format": "caption-model", "version": 1,
        "encoder": {"arch": "compact", "weights": "encoder.safetensors", "naming": "torchvision",
                    "channels": channels, "strides": strides, "pool": [pool, pool], "output": "layers"},
        "preprocess": {"size": size, "resize": "bilinear", "center_crop": None, "mean": mean, "std": std},
        "decoder": {"type": "attention-lstm", "weights": "decoder.safetensors", "encoder_dim": channels[-1],
                    "attention_dim": A, "embed_dim": E, "decoder_dim": H, "vocab_size": len(wm),
                    "dropout": 0.5, "attention": "relu", "gate": "vector"},
        "vocab": "vocab.json",
        "max_length": 20,
    }
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    with open(os.path.join(folder, "vocab.json"), "w") as f:
        json.dump(wm, f)
    save_file({k: v.detach().float().contiguous() for k, v in encoder.state_dict().items()
               if not k.endswith("num_batches_tracked")}, os.path.join(folder, "encoder.safetensors"))
    save_file({k: v.detach().float().contiguous() for k, v in decoder.state_dict().items()},
              os.path.join(folder, "decoder.safetensors"))
    image_path = os.path.join(OUT, "tiny_image.png")
    scene_image(48, 40, seed=3).save(image_path)

    x = pillow_input(image_path, size, mean, std).double()
    encoder, decoder = encoder.double(), decoder.double()
    rev = {v: w for w, v in wm.items()}
    expected = {}
    margins = []
    with torch.no_grad():
        encoder_out = encoder(x)  # 1×4×4×16
        for k in (3, 1):
            seq, score, alphas = caption_image_beam_search(decoder, encoder_out, wm, k, margins)
            expected[f"beam{k}"] = {"seq": seq, "words": [rev[t] for t in seq[1:-1]], "score": score,
                                    "alphas": [torch.tensor(a).flatten().tolist() for a in alphas[1:]]}
        caption = "A red circle, above the square!"
        seq = [wm["<start>"], wm["a"], wm["red"], wm["circle"], wm["above"], wm["the"], wm["square"], wm["<end>"]]
        lp = teacher_forced_log_probs(decoder, encoder_out.view(1, -1, channels[-1]), seq)
        expected["score"] = {"caption": caption, "seq": seq, "token_log_probs": lp, "log_prob": sum(lp)}
    expected["min_margin"] = min(margins)
    with open(os.path.join(OUT, "tiny_expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
    print(f"{folder}: beam 3 \"{' '.join(expected['beam3']['words'])}\" ({expected['beam3']['score']:.4f}), "
          f"greedy \"{' '.join(expected['beam1']['words'])}\"; smallest top-k margin {min(margins):.2e}")


def make_e2e(directory):
    """A pickled tutorial checkpoint with a real (random) ResNet-18, converted, plus the PyTorch pipeline's answer."""
    import numpy as np
    from PIL import Image, ImageDraw

    torch.manual_seed(2)
    os.makedirs(directory, exist_ok=True)
    words = ["w%d" % i for i in range(40)]
    wm = word_map_for(words)
    # The tutorial pickles whole modules: make the classes live in a module called `models`.
    models = types.ModuleType("models")
    for cls in (Encoder, DecoderWithAttention, Attention):
        cls.__module__ = "models"
        setattr(models, cls.__name__, cls)
    sys.modules["models"] = models
    encoder = Encoder().eval()
    with torch.no_grad():  # non-trivial BatchNorm statistics, so folding them is exercised
        for m in encoder.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.0)
                m.bias.uniform_(-0.1, 0.1)
    decoder = random_decoder(512, len(wm), spread=0.3)
    add_end_counter(decoder, wm["<end>"])
    ckpt = os.path.join(directory, "BEST_checkpoint_random_resnet18.pth.tar")
    torch.save({"epoch": 0, "epochs_since_improvement": 0, "bleu-4": 0.0, "encoder": encoder,
                "decoder": decoder, "encoder_optimizer": None, "decoder_optimizer": None}, ckpt)
    wm_path = os.path.join(directory, "WORDMAP_random.json")
    with open(wm_path, "w") as f:
        json.dump(wm, f)
    model_dir = os.path.join(directory, "model")
    if os.path.isdir(model_dir):
        import shutil
        shutil.rmtree(model_dir)
    subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "convert_checkpoint.py"), ckpt,
                    "--word-map", wm_path, "--out", model_dir], check=True)

    rng = np.random.default_rng(0)
    img = Image.new("RGB", (320, 240), (40, 90, 160))
    draw = ImageDraw.Draw(img)
    for _ in range(6):
        x, y, r = rng.integers(0, 320), rng.integers(0, 240), rng.integers(15, 60)
        draw.ellipse([x - r, y - r, x + r, y + r], fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
    image_path = os.path.join(directory, "image.png")
    img.save(image_path)

    # The tutorial's caption.py preprocessing (256×256 resize, /255, ImageNet normalisation), with Pillow's
    # bilinear resize (scipy.misc.imresize, which the tutorial calls, is Pillow underneath).
    x = pillow_input(image_path, 256, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    reference = {"image": image_path, "model": model_dir}
    with torch.inference_mode():
        encoder_out = encoder(x)  # 1×14×14×512, float32 as in the tutorial
        for k in (3, 1):
            margins = []
            seq, score, _ = caption_image_beam_search(decoder, encoder_out, wm, k, margins)
            rev = {v: w for w, v in wm.items()}
            reference[f"beam{k}"] = {"seq": seq, "words": [rev[t] for t in seq[1:-1]], "score": score,
                                     "min_margin": min(margins)}
        words_caption = " ".join(reference["beam3"]["words"])
        lp = teacher_forced_log_probs(decoder, encoder_out.view(1, -1, 512), reference["beam3"]["seq"])
        reference["score"] = {"caption": words_caption, "token_log_probs": lp, "log_prob": sum(lp)}
    with open(os.path.join(directory, "reference.json"), "w") as f:
        json.dump(reference, f, indent=1)
    print(f"{directory}: checkpoint {os.path.getsize(ckpt)} bytes, model {model_dir}, "
          f"beam 3: {reference['beam3']['words']} ({reference['beam3']['score']:.4f}), "
          f"smallest margin {reference['beam3']['min_margin']:.2e}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--e2e", metavar="DIR", help="also build, convert and run a ResNet-18 tutorial checkpoint in DIR")
    args = ap.parse_args()
    make_search_fixture()
    make_tiny_model()
    if args.e2e:
        make_e2e(args.e2e)


if __name__ == "__main__":
    main()
