#!/usr/bin/env bash
# Multiple-choice video QA on the world, zero-shot and fine-tuned, three seeds: the zero-shot numbers
# are the videoclip claim's overlapped runs at 25 % shift re-evaluated (their eval.json gains
# val_mc_accuracy); each is then fine-tuned on the training videos' questions (150 steps, batch 32).
# Needs scripts/videoclip_claim.sh's runs. ≈ 1 min per evaluation + 4 min per fine-tuning on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
polymodal="${POLYMODAL:-.venv/bin/polymodal}"
for seed in 0 1 2; do
  base=runs/videoclip-claims/overlapped-r25-s$seed
  if ! grep -q val_mc_accuracy $base/eval.json; then
    "$polymodal" eval configs/videoclip-world.yaml --checkpoint $base/model
    cp $base/model/eval.json $base/eval.json
  fi
  out=runs/video-mc/finetuned-s$seed
  [ -f $out/eval.json ] || "$polymodal" train configs/video-mc-world.yaml model.init_from=$base/model train.seed=$seed \
    train.out=$out
  mkdir -p runs/video-mc/zeroshot-s$seed && cp $base/eval.json runs/video-mc/zeroshot-s$seed/eval.json
done
.venv/bin/python scripts/runs_table.py runs/video-mc --group zeroshot,finetuned \
  --metrics val_mc_accuracy,val_mc_chance,val_text_to_video_R@1,val_localisation_recall
