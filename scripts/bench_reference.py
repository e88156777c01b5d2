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
    emit(bench="decode_resize", images=len(files), seconds=t, images_per_s=len(files) / t)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("sgemm"); s.add_argument("sizes", type=int, nargs="+")
    s = sub.add_parser("make-photos"); s.add_argument("dir"); s.add_argument("--count", type=int, default=64)
    s = sub.add_parser("decode"); s.add_argument("dir"); s.add_argument("--size", type=int, default=256)
    args = ap.parse_args()
    if args.mode == "sgemm":
        bench_sgemm(args.sizes)
    elif args.mode == "make-photos":
        make_photos(args.dir, args.count)
    elif args.mode == "decode":
        bench_decode(args.dir, args.size)


if __name__ == "__main__":
    sys.exit(main())
