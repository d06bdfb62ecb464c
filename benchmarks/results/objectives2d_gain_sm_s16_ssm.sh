#!/bin/bash
# The ssm check of the session-16 input_gain runs: the reproduction check of the ssm 2-D preset D (two-spirals seed 0,
# recorded +0.044 in objectives2d_ssm_s11.log), then G (input_gain 1.4) on the seven built-in sets, seeds 0-2.
source "$(dirname "$0")/objectives2d_gain_sm_s16_run.sh"
G='{"objective": "ssm", "input_gain": 1.4}'
run two-spirals 0 '{"objective": "ssm"}'
for s in two-spirals moons pinwheel checkerboard eight-gaussians rings swiss-roll; do run $s 0,1,2 "$G"; done
echo "## $(date -u +%H:%M:%S) ssm done" >> $LOG
