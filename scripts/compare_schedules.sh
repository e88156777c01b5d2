#!/usr/bin/env bash
# Teacher forcing against each scheduled-sampling schedule (Bengio et al. 2015) on equal budgets.
#
#   scripts/compare_schedules.sh TRAIN_DIR TEST_DIR ENCODER_MODEL OUT_DIR [STEPS] [EPS_END]
#
# Trains one new attention decoder per schedule on the frozen CNN of ENCODER_MODEL (a model folder: its
# features are computed once per run and cached), each for STEPS steps (default 2000) of 32 (image, caption)
# pairs with the same seed, dims and optimiser; every schedule's ε falls from 1 to EPS_END (default 0.5) at the
# last step (linear: k=1, c=(1-EPS_END)/STEPS; exponential: k=EPS_END^(1/STEPS); inverse sigmoid: the k with
# k/(k+exp(STEPS/k)) = EPS_END). Then `caption eval --beam 3` on TEST_DIR, and a Markdown table on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
train=$1 test=$2 encoder=$3 out=$4 steps=${5:-2000} end=${6:-0.5}
caption=.build/release/caption
[ -x "$caption" ] || swift build -c release --product caption >&2
size=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['preprocess']['size'])" "$encoder/config.json")
read -r lin_c exp_k sig_k < <(python3 - "$steps" "$end" <<'EOF'
import math, sys
s, e = int(sys.argv[1]), float(sys.argv[2])
lo, hi = 1.0, 1e7                      # k/(k+exp(s/k)) rises with k: bisect for ε(s) = e
for _ in range(200):
    k = (lo + hi) / 2
    lo, hi = (k, hi) if k / (k + math.exp(s / k)) < e else (lo, k)
print((1 - e) / s, e ** (1 / s), max(1.0, (lo + hi) / 2))
EOF
)
mkdir -p "$out"
common=(--data "$train" --encoder-weights "$encoder" --image-size "$size" --freeze-encoder
        --attention-dim 256 --embed-dim 128 --decoder-dim 256 --dropout 0.2 --lr 1e-3 --max-length 20
        --batch-size 32 --max-steps "$steps" --epochs 1000 --val-images 200 --lr-patience 0 --early-stop 0 --quiet)
declare -A flags=(
    [none]=""
    [linear]="--scheduled-sampling linear --sampling-k 1 --sampling-c $lin_c"
    [exponential]="--scheduled-sampling exponential --sampling-k $exp_k"
    [inverse-sigmoid]="--scheduled-sampling inverse-sigmoid --sampling-k $sig_k"
)
echo "| schedule (ε: 1 → $end over $steps steps) | BLEU-4 | CIDEr-D | BLEU-1 | ROUGE-L | train s |"
echo "|---|---|---|---|---|---|"
for s in none linear exponential inverse-sigmoid; do
    rm -rf "${out:?}/$s"
    # shellcheck disable=SC2086
    summary=$("$caption" train "${common[@]}" ${flags[$s]} --out "$out/$s")
    metrics=$("$caption" eval --data "$test" --split test --weights "$out/$s" --beam 3 --quiet)
    python3 - "$s" "$summary" "$metrics" <<'EOF'
import json, sys
name, t, m = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
label = "teacher forcing" if name == "none" else name
print(f"| {label} | {m['BLEU-4']:.4f} | {m['CIDEr-D']:.4f} | {m['BLEU-1']:.4f} | {m['ROUGE-L']:.4f} | {t['training_seconds']:.0f} |")
EOF
done
