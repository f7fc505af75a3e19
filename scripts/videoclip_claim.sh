#!/usr/bin/env bash
# The lecture's VideoCLIP claim on the world: under narration shifted in time, overlapped (clip, text)
# pairs beat pairs cut at the timestamps (naive), on text→video retrieval and on step localisation.
# Equal steps (300, batch 64), three seeds, at 0 %, 25 % and 50 % of segments shifted; then
# retrieval-augmented batches against random ones (overlapped pairs, 25 % shifted).
# The frame features are computed once (runs/videoclip-cache) and shared by every run; a run whose
# eval.json exists is kept. Needs runs/pipeline/clip/model (bash scripts/bootstrap.sh demo).
# ≈ 2.5 min per run on 2 cores, plus ≈ 8 min once for the features.
set -euo pipefail
cd "$(dirname "$0")/.."
polymodal="${POLYMODAL:-.venv/bin/polymodal}"
common=(train.steps=300 data.feature_cache=runs/videoclip-cache)
for seed in 0 1 2; do
  for rate in 50 25 00; do
    for pairs in naive overlapped; do
      out=runs/videoclip-claims/$pairs-r$rate-s$seed
      [ -f $out/eval.json ] || "$polymodal" train configs/videoclip-world.yaml "${common[@]}" data.pairs=$pairs \
        data.shift_rate=0.$rate train.seed=$seed train.out=$out
    done
  done
  out=runs/videoclip-claims/retrieval-r25-s$seed
  [ -f $out/eval.json ] || "$polymodal" train configs/videoclip-world.yaml "${common[@]}" data.pairs=overlapped \
    data.shift_rate=0.25 data.batches=retrieval train.seed=$seed train.out=$out
done
metrics=val_text_to_video_R@1,val_text_to_video_R@5,val_text_to_video_R@10,val_text_to_video_median_rank,val_chance_R@1,val_ceiling_R@1,val_localisation_recall,val_localisation_chance
for rate in 00 25 50; do
  echo "### $rate % of segments shifted"
  .venv/bin/python scripts/runs_table.py runs/videoclip-claims --group naive-r$rate,overlapped-r$rate --metrics $metrics
done
echo "### retrieval-augmented vs random batches (overlapped, 25 % shifted)"
.venv/bin/python scripts/runs_table.py runs/videoclip-claims --group overlapped-r25,retrieval-r25 --metrics $metrics
