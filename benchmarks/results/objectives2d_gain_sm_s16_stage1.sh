#!/bin/bash
# Stage 1 of the session-16 input_gain runs (dsm): the reproduction check of the default D, then G (input_gain 1.4)
# on the four tuning sets by rounds of seeds (0-2 of all four, then 3-5).
source "$(dirname "$0")/objectives2d_gain_sm_s16_run.sh"
G='{"objective": "dsm", "input_gain": 1.4}'
run two-spirals 0 '{"objective": "dsm"}'       # the default preset: recorded +0.0794
for seeds in 0,1,2 3,4,5; do
  for s in eight-gaussians pinwheel two-spirals swiss-roll; do
    run $s $seeds "$G"
  done
done
echo "## $(date -u +%H:%M:%S) stage 1 done" >> $LOG
