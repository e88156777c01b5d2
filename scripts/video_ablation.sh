#!/usr/bin/env bash
# The README's video ablation (Srivastava et al. 2015, Table 1's comparison on Moving-MNIST-like data):
# future-only, autoencoder-only (reconstruction only), composite, and composite with conditional decoders,
# each trained on the same budget (STEPS steps of BATCH sequences, the same data and seed) and evaluated
# free-running on a fresh test set (another seed) against the copy-last and mean-frame baselines.
#
#   scripts/video_ablation.sh [OUT_DIR]          (default /tmp/video-ablation; THREADS=1, STEPS=1500, BATCH=16;
#                                                 CAPTION=path/to/caption skips the build)
#
# Prints one Markdown table row per variant; the models and eval JSON stay in OUT_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/video-ablation}
THREADS=${THREADS:-1}
STEPS=${STEPS:-1500}
BATCH=${BATCH:-16}
LR=${LR:-2e-3}
FINAL_LR=${FINAL_LR:-1e-4}
TRAIN_SEQUENCES=${TRAIN_SEQUENCES:-20000}
export CAPTION_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS
if [ -z "${CAPTION:-}" ]; then swift build -c release --product caption >&2; CAPTION=.build/release/caption; fi
mkdir -p "$OUT"
[ -d "$OUT/test" ] || "$CAPTION" video synth --out "$OUT/test" --count 200 --seed 999 --quiet >/dev/null

variants=(
    "future-only|--reconstruction none --future unconditioned"
    "autoencoder-only|--reconstruction unconditioned --future none"
    "composite|--reconstruction unconditioned --future unconditioned"
    "composite, conditional decoders|--reconstruction conditional --future conditional"
    "composite, conditional decoders, scheduled sampling|--reconstruction conditional --future conditional --scheduled-sampling linear --sampling-k 1 --sampling-c 6.7e-4 --sampling-min 0"
)
for v in "${variants[@]}"; do
    name=${v%%|*}; flags=${v#*|}
    dir="$OUT/$(echo "$name" | tr -c 'a-z0-9\n' '-')"
    if [ ! -f "$dir/config.json" ]; then
        start=$(date +%s)
        # shellcheck disable=SC2086
        "$CAPTION" video train --synthetic "$TRAIN_SEQUENCES" --out "$dir" --max-steps "$STEPS" --batch-size "$BATCH" \
            --lr "$LR" --final-lr "$FINAL_LR" --anomaly-sequences 64 --log-every 250 $flags 2> "$dir.log" >/dev/null
        echo $(( $(date +%s) - start )) > "$dir.seconds"
    fi
    "$CAPTION" video eval --data "$OUT/test" --weights "$dir" --out "$dir.eval.json" >/dev/null
done

python3 - "$OUT" "${variants[@]}" <<'PY'
import json, re, sys
out, variants = sys.argv[1], sys.argv[2:]
print("| variant | train s | reconstruction: model / copy-last / mean-frame | vs best baseline | future: model / copy-last / mean-frame | vs copy-last |")
print("|---|---|---|---|---|---|")
for v in variants:
    name = v.split("|")[0]
    base = f"{out}/" + re.sub(r"[^a-z0-9\n]", "-", name)
    r = json.load(open(base + ".eval.json"))
    seconds = f'{json.load(open(base + "/config.json"))["training"]["seconds"]:.0f}'   # training only, not data
    rec, fut = r["reconstruction"], r["future"]
    def cell(c):
        m = "—" if c.get("model") is None else f"**{c['model']:.0f}**"
        return f"{m} / {c['copy_last']:.0f} / {c['mean_frame']:.0f}"
    def gain(m, b):
        return "—" if m is None else f"{100 * (1 - m / b):+.0f}%"
    print(f"| {name} | {seconds} | {cell(rec)} | {gain(rec.get('model'), min(rec['copy_last'], rec['mean_frame']))} "
          f"| {cell(fut)} | {gain(fut.get('model'), fut['copy_last'])} |")
PY
