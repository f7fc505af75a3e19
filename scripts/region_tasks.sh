#!/usr/bin/env bash
# The lecture's region tasks on the world, each next to its chance level and ceiling: multimodal
# consistency (with the text-only and image-only baselines of the same size), referring expressions
# (true and detector regions) and VCR, for VisualBERT (from configs/visualbert-world.yaml's run) and
# ViLBERT (from configs/vilbert-world.yaml's run). A run whose eval.json exists is kept.
# Needs runs/pipeline/clip/model (bash scripts/bootstrap.sh demo). ≈ 5–10 min per run on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
polymodal="${POLYMODAL:-.venv/bin/polymodal}"
out=runs/region-tasks
train() {  # train RUN_NAME CONFIG [key=value ...]
  local name=$1 config=$2; shift 2
  [ -f "$out/$name/eval.json" ] || "$polymodal" train "$config" train.out="$out/$name" "$@"
}
[ -f runs/visualbert-world/model/config.json ] || "$polymodal" train configs/visualbert-world.yaml
[ -f runs/vilbert-world/model/config.json ] || "$polymodal" train configs/vilbert-world.yaml
vilbert=(model.preset=vilbert-world model.init_from=runs/vilbert-world/model)
train consistency configs/consistency-world.yaml
train consistency-text configs/consistency-world.yaml objective.inputs=text
train consistency-image configs/consistency-world.yaml objective.inputs=image
train refexp configs/refexp-world.yaml
train refexp-vilbert configs/refexp-world.yaml "${vilbert[@]}"
train vcr configs/vcr-world.yaml
train vcr-vilbert configs/vcr-world.yaml "${vilbert[@]}"
table() { .venv/bin/python scripts/runs_table.py "$out" --exact "$@"; }
table --group consistency,consistency-text,consistency-image \
  --metrics val_accuracy,val_auroc,val_majority_baseline,val_accuracy_colour,val_accuracy_count,val_accuracy_relation
table --group refexp,refexp-vilbert --metrics val_accuracy_truth_boxes,val_chance_truth_boxes,val_ceiling_truth_boxes,\
val_accuracy_detector_boxes,val_chance_detector_boxes,val_ceiling_detector_boxes
table --group vcr,vcr-vilbert --metrics val_q_a_accuracy,val_qa_r_accuracy,val_q_ar_accuracy
