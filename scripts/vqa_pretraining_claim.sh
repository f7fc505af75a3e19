#!/usr/bin/env bash
# The lecture's claim 4 on the world: VQA fine-tuned from the VisualBERT pretraining run vs from
# all-MiniLM-L6-v2's text weights alone, three seeds each, then the table of means and spreads.
# Needs runs/pipeline/clip/model (bash scripts/bootstrap.sh demo) and runs/visualbert-world/model
# (polymodal train configs/visualbert-world.yaml). ≈ 4.5 min per run on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
polymodal="${POLYMODAL:-.venv/bin/polymodal}"
for seed in 0 1 2; do
  "$polymodal" train configs/vqa-world.yaml train.seed=$seed train.out=runs/vqa-claims/pretrained-s$seed
  "$polymodal" train configs/vqa-world.yaml model.init_from=null train.seed=$seed train.out=runs/vqa-claims/scratch-s$seed
done
.venv/bin/python scripts/runs_table.py runs/vqa-claims --group pretrained,scratch \
  --metrics val_accuracy,val_accuracy_without_regions,val_accuracy_count,val_accuracy_exists,val_accuracy_colour,val_accuracy_shape,val_accuracy_relation,val_accuracy_compare
