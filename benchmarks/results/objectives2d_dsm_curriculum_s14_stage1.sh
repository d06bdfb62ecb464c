#!/bin/bash
# Session 14 (issue 15), dsm noise curriculum, stage 1 (tuning on eight-gaussians and pinwheel, seeds 0-8).
# Run from benchmarks/results/; appends everything to objectives2d_dsm_curriculum_s14.log. One process at a time.
source "$(dirname "$0")/objectives2d_dsm_curriculum_s14_run.sh"     # cd, LOG, PY, run()
# reproduction check: session 13's k 3 / F 0.5 pinwheel seed 3 was +0.1077 (objectives2d_dsm_curriculum_seeds3to8_s13.log)
run pinwheel 3 '{"objective": "dsm", "dsm_anneal_factor": 3.0, "dsm_anneal_until": 0.5}'
for seeds in 0,1,2 3,4,5 6,7,8; do
  run eight-gaussians,pinwheel $seeds '{"objective": "dsm", "dsm_anneal_factor": 3.0, "dsm_anneal_until": 0.3}'
  run eight-gaussians,pinwheel $seeds '{"objective": "dsm", "dsm_anneal_factor": 10.0, "dsm_anneal_until": 0.3}'
done
echo "## $(date -u +%H:%M:%S) stage 1 (k 3 / F 0.3, k 10 / F 0.3) done" >> $LOG
