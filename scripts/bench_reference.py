#!/usr/bin/env python3
"""The Python half of scripts/bench.sh: the same measurements as `caption-bench`, done with the
reference libraries (numpy, Pillow, PyTorch). Prints one JSON object per measurement."""
import argparse, glob, json, os, sys, time


def best_time(repeats, fn):
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def emit(**fields):
    print(json.dumps(fields, sort_keys=True), flush=True)


def bench_sgemm(sizes):
    import numpy as np
    rng = np.random.default_rng(0)
    for n in sizes:
        a = rng.standard_normal((n, n), dtype=np.float32)
        b = rng.standard_normal((n, n), dtype=np.float32)
        c = np.empty((n, n), dtype=np.float32)
        repeats = 20 if n <= 512 else (8 if n <= 1024 else 3)
        t = best_time(repeats, lambda: np.matmul(a, b, out=c))
        emit(bench="sgemm", n=n, seconds=t, gflops=2.0 * n**3 / t / 1e9)


def make_photos(directory, count, seed=0):
    """Photo-like 640×480 JPEGs: smooth gradients, blurred blobs and sensor noise (quality 90)."""
    import numpy as np
    from PIL import Image, ImageFilter
    os.makedirs(directory, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:480, 0:640].astype(np.float32)
    for i in range(count):
        path = os.path.join(directory, f"photo_{i:03d}.jpg")
        if os.path.exists(path):
            continue
        img = np.zeros((480, 640, 3), np.float32)
        for c in range(3):
            a, b, d = rng.uniform(-0.3, 0.3, 3)
            img[..., c] = 128 + 100 * np.sin(a * xx / 40 + b * yy / 40 + d * 6)
        for _ in range(12):
            cx, cy, r = rng.uniform(0, 640), rng.uniform(0, 480), rng.uniform(10, 120)
            mask = ((xx - cx) ** 2 + (yy - cy) ** 2) < r * r
            img[mask] = rng.uniform(0, 255, 3)
        pil = Image.fromarray(img.clip(0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(2))
        arr = np.asarray(pil).astype(np.float32) + rng.normal(0, 6, (480, 640, 3))
        Image.fromarray(arr.clip(0, 255).astype(np.uint8)).save(path, quality=90)


def bench_decode(directory, size):
    from PIL import Image
    files = sorted(glob.glob(os.path.join(directory, "*.jpg")))

    def run():
        for f in files:
            with Image.open(f) as im:
                im.convert("RGB").resize((size, size), Image.BILINEAR)

    t = best_time(3, run)
    emit(bench="decode_resize", size=size, images=len(files), seconds=t, images_per_s=len(files) / t)


def encoder_model(name):
    """The CNN body `caption-bench encoder NAME` times: torchvision ResNet children[:-2] (conv1 … layer4),
    VGG features[:-1] (up to the last conv+ReLU), or the compact net; random weights, random BN statistics,
    eval mode."""
    import torch
    from torch import nn
    import torchvision
    if name == "compact":
        channels, strides = [32, 32, 64, 64, 128, 128, 256], [2, 1, 2, 1, 2, 1, 1]  # CompactNetSpec()
        layers = []
        for cin, cout, s in zip([3] + channels, channels, strides):
            layers += [nn.Conv2d(cin, cout, 3, s, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
        body = nn.Sequential(*layers)
    elif name.startswith("resnet"):
        body = nn.Sequential(*list(getattr(torchvision.models, name)().children())[:-2])
    else:
        body = getattr(torchvision.models, name)().features[:-1]
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in body.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) * 1.5 + 0.5)
    return body.eval()


def bench_encoder(name, size, batch, repeats=None):
    import torch
    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
    body = encoder_model(name)
    x = torch.randn(batch, 3, size, size)
    cpu = [float("inf")]

    def run():
        c0 = time.process_time()
        body(x)
        cpu[0] = min(cpu[0], time.process_time() - c0)

    with torch.inference_mode():
        t = best_time(repeats or (3 if batch * size * size >= 8 * 224 * 224 and name != "compact" else 5), run)
    emit(bench="encoder", model=name, size=size, batch=batch, seconds=t, images_per_s=batch / t, cpu_seconds=cpu[0])


def bench_encoder_train(name, size, batch):
    """A training step of the CNN body: train-mode forward, backward from a random output gradient."""
    import torch
    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
    body = encoder_model(name).train()
    x = torch.randn(batch, 3, size, size)
    dy = torch.randn_like(body(x))

    cpu = [float("inf")]

    def step():
        c0 = time.process_time()
        body.zero_grad(set_to_none=False)
        body(x).backward(dy)
        cpu[0] = min(cpu[0], time.process_time() - c0)

    t = best_time(3, step)
    emit(bench="encoder_train", model=name, size=size, batch=batch, seconds=t, images_per_s=batch / t, cpu_seconds=cpu[0])


def bench_encoder_memory(name, size, batch):
    """Peak RSS (ru_maxrss) of building the model and running one forward pass."""
    import resource
    import torch
    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    body = encoder_model(name)
    x = torch.randn(batch, 3, size, size)
    with torch.inference_mode():
        body(x)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    weights = sum(t.numel() * t.element_size() for t in body.state_dict().values())
    emit(bench="encoder_memory", model=name, size=size, batch=batch, peak_rss_mb=peak / 2**20,
         baseline_rss_mb=baseline / 2**20, weights_mb=weights / 2**20)


def bench_decoder(beam, steps, images):
    """The tutorial's caption_image_beam_search (as re-implemented in scripts/make_captioner_fixtures.py) at the
    tutorial's sizes (L = 196, D = 2048, attention/embedding/LSTM 512, V = 9490), random weights, random
    annotations, <end> masked so every search runs exactly `steps` steps; images one after another."""
    import torch
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from make_captioner_fixtures import DecoderWithAttention, caption_image_beam_search
    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
    torch.manual_seed(0)
    vocab = 9490
    decoder = DecoderWithAttention(512, 512, 512, vocab, encoder_dim=2048).eval()
    with torch.no_grad():  # the tutorial's init_weights()
        decoder.embedding.weight.uniform_(-0.1, 0.1)
        decoder.fc.weight.uniform_(-0.1, 0.1)
        decoder.fc.bias.zero_()
    word_map = {f"w{i}": i for i in range(vocab - 2)}
    word_map["<start>"] = vocab - 2
    word_map["<end>"] = -1  # never produced: no hypothesis retires
    features = torch.rand(images, 14, 14, 2048)

    def run():
        with torch.inference_mode():
            for i in range(images):
                assert caption_image_beam_search(decoder, features[i:i + 1], word_map, beam, max_steps=steps) is None

    t = best_time(10, run)
    emit(bench="decoder", mode="greedy" if beam == 1 else f"beam{beam}", batch=images, steps=steps,
         seconds_per_image=t / images, images_per_s=images / t, ms_per_step=t / images / steps * 1000)


def bench_train(batch, caplen, mode):
    """One decoder training step as the tutorial's train.py takes it, at the tutorial's sizes (L = 196, D = 2048,
    attention/embedding/LSTM 512, V = 9490, dropout 0.5) on given random features: forward (the tutorial's
    DecoderWithAttention, re-implemented in scripts/make_decoder_fixtures.py), packed cross-entropy + doubly
    stochastic term, backward, clip_grad_norm_(5), Adam. Caption lengths caplen-4 .. caplen+4 as caption-bench's.
    `sampled`: scheduled sampling with a coin per token, ε = 0.75, the previous step's argmax (detached)."""
    import torch
    import torch.nn.functional as F
    from torch.nn.utils.rnn import pack_padded_sequence
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from make_decoder_fixtures import DecoderWithAttention
    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
    torch.manual_seed(0)
    vocab = 9490
    dec = DecoderWithAttention(512, 512, 512, vocab, 2048)
    dec.dropout = torch.nn.Dropout(0.5)
    with torch.no_grad():  # the tutorial's init_weights()
        dec.embedding.weight.uniform_(-0.1, 0.1)
        dec.fc.weight.uniform_(-0.1, 0.1)
        dec.fc.bias.zero_()
    dec.train()
    opt = torch.optim.Adam(dec.parameters(), lr=4e-4)
    features = torch.rand(batch, 196, 2048)
    lengths = torch.tensor([caplen - 4 + i % 9 for i in range(batch)])
    captions = torch.zeros(batch, caplen + 5, dtype=torch.int64)
    for i, n in enumerate(lengths.tolist()):
        captions[i, 0] = vocab - 2
        captions[i, 1:n - 1] = torch.randint(1, vocab - 3, (n - 2,))
        captions[i, n - 1] = vocab - 1

    def forward_sampled(encoder_out, caps, lens, eps=0.75):
        lens, sort_ind = lens.sort(dim=0, descending=True)
        encoder_out, caps = encoder_out[sort_ind], caps[sort_ind]
        mean = encoder_out.mean(dim=1)
        h, c = dec.init_h(mean), dec.init_c(mean)
        decode_lengths = (lens - 1).tolist()
        T = max(decode_lengths)
        predictions = torch.zeros(batch, T, vocab)
        alphas = torch.zeros(batch, T, encoder_out.size(1))
        for t in range(T):
            bt = sum(l > t for l in decode_lengths)
            tokens = caps[:bt, t]
            if t > 0:
                model = predictions[:bt, t - 1].detach().argmax(dim=1)
                tokens = torch.where(torch.rand(bt) < eps, tokens, model)
            awe, alpha = dec.attention(encoder_out[:bt], h[:bt])
            awe = torch.sigmoid(dec.f_beta(h[:bt])) * awe
            h, c = dec.decode_step(torch.cat([dec.embedding(tokens), awe], dim=1), (h[:bt], c[:bt]))
            predictions[:bt, t, :] = dec.fc(dec.dropout(h))
            alphas[:bt, t, :] = alpha
        return predictions, caps, decode_lengths, alphas, sort_ind

    def step():
        run = forward_sampled if mode == "sampled" else dec
        scores, caps_sorted, decode_lengths, alphas, _ = run(features, captions, lengths)
        targets = pack_padded_sequence(caps_sorted[:, 1:], decode_lengths, batch_first=True).data
        scores = pack_padded_sequence(scores, decode_lengths, batch_first=True).data
        loss = F.cross_entropy(scores, targets) + ((1.0 - alphas.sum(dim=1)) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(dec.parameters(), 5.0)
        opt.step()

    t = best_time(3, step)
    emit(bench="train_step", mode=mode, batch=batch, size=caplen, seconds=t, captions_per_s=batch / t)


def bench_batch(directory, weights, beam, batch, out=None, limit=None):
    """The job of `caption batch DIR` done the PyTorch way: every file of DIR in name order, Pillow decode +
    bilinear resize + normalise (the tutorial's preprocessing), the same model loaded from the model folder's
    safetensors (the compact CNN of scripts/make_captioner_fixtures.py, then the tutorial's DecoderWithAttention),
    encoder passes of BATCH images, then the tutorial's caption_image_beam_search image by image (max_length + 1
    steps, as ours). A file that fails gets an error record. `limit`: only the first LIMIT files (the rate is per
    image; on a loaded machine two-thread PyTorch can take an hour for 1,000). Timed from the first file to the last record (model
    loading and `import torch` excluded); `out` gets the records as JSON lines, to compare captions with ours."""
    import numpy as np
    import torch
    from PIL import Image
    from safetensors.torch import load_file
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from make_captioner_fixtures import CompactEncoder, DecoderWithAttention, caption_image_beam_search
    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
    cfg = json.load(open(os.path.join(weights, "config.json")))
    enc, dec, pre = cfg["encoder"], cfg["decoder"], cfg["preprocess"]
    if enc["arch"] != "compact" or dec.get("attention", "relu") != "relu" or dec.get("gate", "vector") != "vector":
        raise SystemExit("bench_reference.py batch: only the compact CNN with the tutorial's decoder is mirrored here")
    encoder = CompactEncoder(enc["channels"], enc["strides"], enc["pool"] or 1)
    if not enc["pool"]:
        encoder.pool = torch.nn.Identity()  # the CNN's own grid
    encoder.load_state_dict(load_file(os.path.join(weights, enc["weights"])), strict=False)
    decoder = DecoderWithAttention(dec["attention_dim"], dec["embed_dim"], dec["decoder_dim"], dec["vocab_size"],
                                   encoder_dim=dec["encoder_dim"], dropout=dec["dropout"])
    decoder.load_state_dict(load_file(os.path.join(weights, dec["weights"])))
    encoder.eval(), decoder.eval()
    word_map = json.load(open(os.path.join(weights, cfg.get("vocab", "vocab.json"))))
    words = {i: w for w, i in word_map.items()}
    size = pre["size"]
    mean = torch.tensor(pre["mean"])[:, None, None]
    std = torch.tensor(pre["std"])[:, None, None]
    files = sorted(os.path.join(directory, f) for f in os.listdir(directory))[:limit]
    sink = open(out, "w") if out else None
    cpu0, t0 = time.process_time(), time.perf_counter()
    captioned = 0
    with torch.inference_mode():
        for start in range(0, len(files), batch):
            names, inputs = [], []
            for f in files[start:start + batch]:
                try:
                    with Image.open(f) as im:
                        x = np.asarray(im.convert("RGB").resize((size, size), Image.BILINEAR), dtype=np.float32)
                    inputs.append((torch.from_numpy(x / np.float32(255.0)).permute(2, 0, 1) - mean) / std)
                    names.append(f)
                except Exception as e:
                    if sink: sink.write(json.dumps({"image": f, "error": str(e)}) + "\n")
            if not inputs:
                continue
            features = encoder(torch.stack(inputs))  # N×H'×W'×D
            for i, f in enumerate(names):
                found = caption_image_beam_search(decoder, features[i:i + 1], word_map, beam, max_steps=cfg["max_length"] + 1)
                seq, score = (found[0], found[1]) if found else ([], float("nan"))
                tokens = [words[t] for t in seq[1:] if words[t] not in ("<start>", "<end>")]
                captioned += 1
                if sink:
                    sink.write(json.dumps({"image": f, "caption": " ".join(tokens), "tokens": tokens, "log_prob": score}) + "\n")
                    sink.flush()
    seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    emit(bench="batch", images=captioned, batch=batch, beam=beam, seconds=seconds, cpu_seconds=cpu,
         images_per_s=captioned / seconds, images_per_cpu_s=captioned / cpu)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("sgemm"); s.add_argument("sizes", type=int, nargs="+")
    s = sub.add_parser("make-photos"); s.add_argument("dir"); s.add_argument("--count", type=int, default=64)
    s = sub.add_parser("decode"); s.add_argument("dir"); s.add_argument("--size", type=int, default=256)
    s = sub.add_parser("encoder"); s.add_argument("arch"); s.add_argument("size", type=int); s.add_argument("batch", type=int)
    s = sub.add_parser("encoder-train"); s.add_argument("arch"); s.add_argument("size", type=int); s.add_argument("batch", type=int)
    s = sub.add_parser("encoder-memory"); s.add_argument("arch"); s.add_argument("size", type=int); s.add_argument("batch", type=int)
    s = sub.add_parser("decoder"); s.add_argument("beam", type=int); s.add_argument("steps", type=int); s.add_argument("images", type=int, nargs="?", default=1)
    s = sub.add_parser("train"); s.add_argument("batch", type=int); s.add_argument("caplen", type=int); s.add_argument("kind", nargs="?", default="teacher")
    s = sub.add_parser("batch"); s.add_argument("dir"); s.add_argument("--weights", required=True)
    s.add_argument("--beam", type=int, default=3); s.add_argument("--batch-size", type=int, default=16); s.add_argument("--out")
    s.add_argument("--limit", type=int)
    s = sub.add_parser("video"); s.add_argument("--model", default="shipped"); s.add_argument("--batch", type=int, default=16)
    s.add_argument("--steps", type=int, default=5); s.add_argument("--repeats", type=int, default=3)
    s.add_argument("--label", default="train"); s.add_argument("overrides", nargs="*")
    args = ap.parse_args()
    if args.mode == "sgemm":
        bench_sgemm(args.sizes)
    elif args.mode == "make-photos":
        make_photos(args.dir, args.count)
    elif args.mode == "decode":
        bench_decode(args.dir, args.size)
    elif args.mode == "encoder":
        bench_encoder(args.arch, args.size, args.batch)
    elif args.mode == "encoder-train":
        bench_encoder_train(args.arch, args.size, args.batch)
    elif args.mode == "encoder-memory":
        bench_encoder_memory(args.arch, args.size, args.batch)
    elif args.mode == "decoder":
        bench_decoder(args.beam, args.steps, args.images)
    elif args.mode == "train":
        bench_train(args.batch, args.caplen, args.kind)
    elif args.mode == "batch":
        bench_batch(args.dir, args.weights, args.beam, args.batch_size, args.out, args.limit)
    elif args.mode == "video":  # the video autoencoder, defined with its fixtures in video_reference.py
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from video_reference import bench as bench_video
        bench_video(args.model, args.batch, args.steps, args.repeats, args.overrides, label=args.label)


if __name__ == "__main__":
    sys.exit(main())
