#!/bin/bash
# Stage 1 of the session-15 dsm final-level runs: the reproduction check of the default, then candidates A (final
# 0.07) and B (final 0.05), both from start 0.3 by half the run, on the four tuning sets by rounds of seeds.
source "$(dirname "$0")/objectives2d_dsm_sigma_s15_run.sh"
A='{"objective": "dsm", "dsm_sigmas": [0.07], "dsm_anneal_factor": 4.285714285714286, "dsm_anneal_until": 0.5}'
B='{"objective": "dsm", "dsm_sigmas": [0.05], "dsm_anneal_factor": 6.0, "dsm_anneal_until": 0.5}'
run two-spirals 0 '{"objective": "dsm"}'       # the default preset: recorded +0.0794
for seeds in 0,1,2 3,4,5; do
  for s in eight-gaussians pinwheel two-spirals swiss-roll; do
    run $s $seeds "$A"
    run $s $seeds "$B"
  done
done
echo "## $(date -u +%H:%M:%S) stage 1 done" >> $LOG
