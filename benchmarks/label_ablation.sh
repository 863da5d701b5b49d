#!/usr/bin/env bash
# Which labels make the best question-blind default model? (issue #20)
#
#   bash benchmarks/label_ablation.sh WORKDIR [TRAIN_WINDOWS]      (default 300; resumable: rerun it)
#
# The same windows (those the surprisal teacher labels: 40 held-out + TRAIN_WINDOWS training windows,
# seed 0), the same fit (LoRA r16, 120 steps of 8 windows, lr 1e-3: the v0 recipe, 1 torch thread),
# four label sets:
#   S-answers   surprisal, the window's overlapping QMSum answers first (v0's recipe, `fit --answer-weight 1`)
#   S-topics    surprisal + every query, answer and topic of the window's meeting (`train mix`)
#   L-topics    the lexical teacher + the meeting's topic words
#   SL-topics   surprisal + lexical + the meeting's topic words
# Each model is scored by benchmarks/bench_answer_kept.py on qmsum_heldout (97 held-out QMSum queries)
# and squad_longdoc (the first 102 questions; built by `promptpress eval build-squad --out
# WORKDIR/squad-1x6 --questions-per-context 6 --contexts-per-article 1` if missing).
# Needs `pip install -e '.[train,models,eval]'`. Labelling 340 windows took ~45 min, each fit 25-30 min,
# each scoring ~5 min on the 2-core machine shared with other work (2026-12-03).
set -euo pipefail
work=${1:?usage: label_ablation.sh WORKDIR [TRAIN_WINDOWS]}
train_windows=${2:-300}
data=${QMSUM_DIR:-../shared/data/qmsum-train}
mkdir -p "$work/ablation"
corpus=$work/corpus.jsonl; S=$work/labels-surprisal.jsonl; L=$work/labels-lexical.jsonl; A=$work/ablation

[ -s "$corpus" ] || promptpress train corpus --data "$data" --out "$corpus"
[ -s "$work/squad-1x6/squad_longdoc.jsonl" ] || promptpress eval build-squad --out "$work/squad-1x6" \
    --questions-per-context 6 --contexts-per-article 1
promptpress train label --corpus "$corpus" --out "$S" --teacher surprisal --train-windows "$train_windows" \
    --heldout-windows 40 --threads 1 --seed 0 --no-progress
[ -s "$L" ] || promptpress train label --corpus "$corpus" --out "$L" --teacher lexical --no-progress

mix() { [ -s "$A/$1.jsonl" ] || promptpress train mix --data "$data" --out "$A/$1.jsonl" "${@:2}"; }
mix S-topics --labels "$S:1" --topic-weight 1
mix L-topics --labels "$S:0" --labels "$L:1" --topic-weight 1   # weight 0: only to pick the same windows
mix SL-topics --labels "$S:1" --labels "$L:1" --topic-weight 1

arm() {  # NAME LABELS [fit args]
    local name=$1 labels=$2; shift 2
    [ -d "$A/$name/final" ] || promptpress train fit --labels "$labels" --out "$A/$name" --method lora \
        --lora-r 16 --steps 120 --batch-size 8 --lr 1e-3 --threads 1 --no-progress --resume "$@"
    for suite in qmsum_heldout squad_longdoc; do
        [ -s "$A/$name.$suite.md" ] || python benchmarks/bench_answer_kept.py --suite "$suite" \
            --data "$work/squad-1x6" --qmsum "$data" --limit 200 --methods "classifier:$A/$name/final" \
            --threads 1 > "$A/$name.$suite.md"
    done
}
arm S-answers "$S" --answer-weight 1
arm S-topics "$A/S-topics.jsonl"
arm L-topics "$A/L-topics.jsonl"
arm SL-topics "$A/SL-topics.jsonl"
grep -h '^| classifier' "$A"/*.md
