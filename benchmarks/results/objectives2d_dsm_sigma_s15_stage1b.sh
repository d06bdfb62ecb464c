#!/bin/bash
# Stage 1 continued (session 15): usage ./objectives2d_dsm_sigma_s15_stage1b.sh PID — waits for the probe call PID
# that stage1.sh left running (stopped at 01:16 during round 1), finishes round 1 (swiss-roll seeds 0-2 of A and B),
# then runs round 2 (seeds 3-5) with all of A's four sets first and then B's: after round 1 B trails A by 0.04-0.06
# nats by the median on three sets, so A's cells are the ones stage 2 would need first. The rule is unchanged.
source "$(dirname "$0")/objectives2d_dsm_sigma_s15_run.sh"
A='{"objective": "dsm", "dsm_sigmas": [0.07], "dsm_anneal_factor": 4.285714285714286, "dsm_anneal_until": 0.5}'
B='{"objective": "dsm", "dsm_sigmas": [0.05], "dsm_anneal_factor": 6.0, "dsm_anneal_until": 0.5}'
while kill -0 $1 2>/dev/null; do sleep 5; done
run swiss-roll 0,1,2 "$A"
run swiss-roll 0,1,2 "$B"
run eight-gaussians,pinwheel,two-spirals,swiss-roll 3,4,5 "$A"
run eight-gaussians,pinwheel,two-spirals,swiss-roll 3,4,5 "$B"
echo "## $(date -u +%H:%M:%S) stage 1 done" >> $LOG
