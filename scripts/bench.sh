#!/usr/bin/env bash
# Side-by-side benchmarks: ours (caption-bench, release build) against the Python references
# (numpy / Pillow / PyTorch, 2 threads) in one run, on this machine, printed as ratios.
#
#   scripts/bench.sh [SECTION...]      sections: sgemm decode encoder train decoder video (default: all)
#
# Needs a Python venv with the references: $VENV (default /tmp/venv), created if missing with
#   python3 -m venv /tmp/venv && /tmp/venv/bin/pip install torch torchvision pillow numpy safetensors
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-/tmp/venv}
PY="$VENV/bin/python"
DATA=${BENCH_DATA:-/tmp/caption-bench-data}
THREADS=${THREADS:-2}
export OPENBLAS_NUM_THREADS=$THREADS OMP_NUM_THREADS=$THREADS CAPTION_THREADS=$THREADS

if [ ! -x "$PY" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q torch torchvision pillow numpy safetensors
fi
swift build -c release --product caption-bench >&2
BENCH=.build/release/caption-bench
sections=("$@"); [ ${#sections[@]} -gt 0 ] || sections=(sgemm decode encoder train decoder video)
results=$(mktemp); trap 'rm -f "$results"' EXIT

run() {  # run SIDE CMD...: tag each JSON line with the side that produced it
    local side=$1; shift
    "$@" | sed "s/^{/{\"side\": \"$side\", /" >> "$results"
}

for s in "${sections[@]}"; do
    case $s in
    sgemm)
        run ours "$BENCH" sgemm 512 1024 2048
        run reference "$PY" scripts/bench_reference.py sgemm 512 1024 2048 ;;
    decode)
        "$PY" scripts/bench_reference.py make-photos "$DATA/photos" --count 64
        run ours "$BENCH" decode "$DATA/photos" 256
        run ours "$BENCH" decode "$DATA/photos" 256 --threads 1
        run reference "$PY" scripts/bench_reference.py decode "$DATA/photos" --size 256 ;;
    encoder)
        # CNN bodies, inference (folded BN / eval + inference_mode), random weights, same shapes both sides.
        for spec in "resnet101 256 1" "resnet101 256 8" "resnet50 224 8" "resnet18 224 8" "compact 96 32"; do
            run ours "$BENCH" encoder $spec
            run reference "$PY" scripts/bench_reference.py encoder $spec
        done
        run ours "$BENCH" encoder-train compact 96 32
        run reference "$PY" scripts/bench_reference.py encoder-train compact 96 32
        run ours "$BENCH" encoder-memory resnet101 256 8
        run reference "$PY" scripts/bench_reference.py encoder-memory resnet101 256 8 ;;
    train)
        # One decoder training step (forward, loss, backward, clip, Adam) at the tutorial's sizes, features given.
        for kind in teacher sampled; do
            run ours "$BENCH" train 32 20 $kind
            run reference "$PY" scripts/bench_reference.py train 32 20 $kind
        done ;;
    decoder)
        # Caption decoding per image at the tutorial's sizes (L=196, D=2048, 512-wide, V=9490), random weights,
        # <end> masked so both sides run 20 steps: beam 3 and greedy, one image, then 8 images (stepped together
        # on our side, one after another in the tutorial's caption_image_beam_search).
        for spec in "3 20 1" "1 20 1" "3 20 8" "1 20 8"; do
            run ours "$BENCH" decoder $spec
            run reference "$PY" scripts/bench_reference.py decoder $spec
        done ;;
    video)
        # The video autoencoder's training step (forward, BCE, backward, clip by norm, Adam) at weights/video's
        # size, 16 sequences of 20 64×64 frames, against the same model in PyTorch (scripts/video_reference.py),
        # at 1 thread and at $THREADS.
        for t in $(printf '%s\n' 1 "$THREADS" | sort -un); do
            run ours env CAPTION_THREADS=$t OPENBLAS_NUM_THREADS=$t "$BENCH" video --model shipped --batch 16 --label train-t$t
            run reference env OMP_NUM_THREADS=$t MKL_NUM_THREADS=$t "$PY" scripts/bench_reference.py video --model shipped --batch 16 --label train-t$t
        done ;;
    *) echo "unknown section $s" >&2; exit 2 ;;
    esac
done

python3 - "$results" "$THREADS" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def key(r):
    return tuple((k, r[k]) for k in sorted(r) if k in ("bench", "n", "model", "batch", "size", "mode"))
metric = {"video_train": "sequences_per_s", "decoder": "images_per_s", "train_step": "captions_per_s", "sgemm": "gflops", "decode_resize": "images_per_s", "encoder": "images_per_s", "encoder_train": "images_per_s",
          "encoder_memory": "peak_rss_mb"}
ref = {key(r): r for r in rows if r["side"] == "reference"}
print(f"# threads={sys.argv[2]}  (ratio = ours / reference; higher is better)")
print(f"{'benchmark':<34} {'ours':>10} {'reference':>10} {'ratio':>7}")
for r in rows:
    if r["side"] != "ours":
        continue
    m = metric.get(r["bench"], "per_s")
    other = ref.get(key(r))
    label = " ".join(f"{k}={v}" for k, v in key(r)) + (f" threads={r['threads']}" if "threads" in r else "")
    theirs = other[m] if other else float("nan")
    print(f"{label:<34} {r[m]:>10.2f} {theirs:>10.2f} {r[m] / theirs if other else float('nan'):>6.2f}x  ({m})")
PY
