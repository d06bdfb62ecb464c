#!/bin/bash
# Session 14 (issue 15), dsm noise curriculum, stage 2 (checking, never tuned on): the variant chosen in stage 1
# ($1, the probe's JSON) and the default (fixed sigma 0.1) where its cells are not recorded, on the other five
# built-in sets and the held-out ring12w / spiral10, in rounds of three seeds (so that a stop at the deadline
# leaves every set with the same seeds). Run from benchmarks/results/; appends to objectives2d_dsm_curriculum_s14.log.
source "$(dirname "$0")/objectives2d_dsm_curriculum_s14_run.sh"     # cd, LOG, PY, run()
VAR="$1"
DEF='{"objective": "dsm"}'
echo "## $(date -u +%H:%M:%S) stage 2 with the chosen variant $VAR" >> $LOG
# the held-out shapes first (neither the default nor any variant has cells there), default and variant interleaved
for seed in 0 1 2; do
  run ring12w,spiral10 $seed "$VAR"
  run ring12w,spiral10 $seed "$DEF"
done
run moons,swiss-roll,two-spirals,checkerboard,rings 0,1,2 "$VAR"     # the default's seeds 0-2 are recorded
for seeds in 3,4,5 6,7,8; do
  run ring12w,spiral10,moons,swiss-roll,two-spirals,checkerboard,rings $seeds "$VAR"
  run ring12w,spiral10,checkerboard,moons,rings $seeds "$DEF"
done
# reproduction check of a reused default cell: session 11's two-spirals seed 3 was +0.077176 (objectives2d_dsm_gap_s11.md)
run two-spirals 3 "$DEF"
echo "## $(date -u +%H:%M:%S) stage 2 done" >> $LOG
