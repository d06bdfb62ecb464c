#!/bin/bash
# Stage 1 of the session-16 input_gain runs for nce: the reproduction check of the default, then G (input_gain 1.4)
# on the three tuning sets by rounds of seeds; swiss-roll 3-5 (D and G interleaved) only if the round-2 G runs on
# the other two sets end before 04:05 UTC (the rule at the head of the log).
source "$(dirname "$0")/objectives2d_gain_nce_s16_run.sh"
run two-spirals 0 "$D"           # the default preset: recorded +0.011719
for s in two-spirals eight-gaussians swiss-roll; do run $s 0,1,2 "$G"; done
for s in two-spirals eight-gaussians; do run $s 3,4,5 "$G"; done
if [ "$(date -u +%H%M)" -lt 0405 ]; then
  for seed in 3 4 5; do run swiss-roll $seed "$D"; run swiss-roll $seed "$G"; done
else
  echo "## $(date -u +%H:%M:%S) swiss-roll seeds 3-5 skipped (round 2 ended at or after 04:05)" >> $LOG
fi
echo "## $(date -u +%H:%M:%S) stage 1 done" >> $LOG
