#!/usr/bin/env bash
# VQA on files vs on the world: the world's VQA exported as VQA v2 files (`polymodal world export
# --format vqa_v2`) and trained through data.kind=vqa_v2, against the world source directly — same
# scenes, steps and seeds. Needs runs/pipeline/clip/model (bash scripts/bootstrap.sh demo).
# 1,000 train / 250 val scenes, 300 steps: ≈ 2.5 min per run on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
polymodal="${POLYMODAL:-.venv/bin/polymodal}"
out=runs/vqa-files-claim
"$polymodal" world export --format vqa_v2 --split train --n 1000 --out "$out/vqa-files"
"$polymodal" world export --format vqa_v2 --split val --n 250 --out "$out/vqa-files"
common="model.init_from=null train.steps=300 data.region_tower=runs/pipeline/clip/model"
for seed in 0 1; do
  "$polymodal" train configs/vqa-world.yaml $common data.train_n=1000 data.val_n=250 train.seed=$seed \
    train.out=$out/world-s$seed
  f="$out/vqa-files"
  "$polymodal" train configs/vqa-v2.yaml $common train.seed=$seed train.out=$out/files-s$seed \
    data.questions=$f/v2_OpenEnded_mscoco_train2014_questions.json data.annotations=$f/v2_mscoco_train2014_annotations.json \
    data.images=$f/train2014 data.val_questions=$f/v2_OpenEnded_mscoco_val2014_questions.json \
    data.val_annotations=$f/v2_mscoco_val2014_annotations.json data.val_images=$f/val2014 data.boxes=$f/boxes.json
done
.venv/bin/python scripts/runs_table.py "$out" --group world,files \
  --metrics val_accuracy,val_accuracy_without_regions,val_majority_answer_accuracy,val_answer_prior_by_type_accuracy
