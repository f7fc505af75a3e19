#!/usr/bin/env bash
# The lecture's claim 3 on the world: single stream (VisualBERT) vs co-attention (ViLBERT) on VQA,
# same data, same steps, same text weights (all-MiniLM-L6-v2), no multimodal pretraining for either,
# three seeds each. The VisualBERT runs are claim 4's "scratch" runs (scripts/vqa_pretraining_claim.sh);
# a run whose eval.json exists is kept. ≈ 4.5 min (VisualBERT) / 5 min (ViLBERT) per run on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
polymodal="${POLYMODAL:-.venv/bin/polymodal}"
for seed in 0 1 2; do
  out=runs/vqa-claims/scratch-s$seed
  [ -f $out/eval.json ] || "$polymodal" train configs/vqa-world.yaml model.init_from=null train.seed=$seed train.out=$out
  out=runs/vqa-claims/vilbert-s$seed
  [ -f $out/eval.json ] || "$polymodal" train configs/vqa-world.yaml model.preset=vilbert-world model.init_from=null \
    train.seed=$seed train.out=$out
done
.venv/bin/python scripts/runs_table.py runs/vqa-claims --group scratch,vilbert \
  --metrics val_accuracy,val_accuracy_without_regions,val_accuracy_count,val_accuracy_exists,val_accuracy_colour,val_accuracy_shape,val_accuracy_relation,val_accuracy_compare
