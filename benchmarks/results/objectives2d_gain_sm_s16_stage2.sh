#!/bin/bash
# Stage 2 of the session-16 input_gain runs (dsm; run only because stage 1 passed): G (input_gain 1.4) on the check
# sets moons, checkerboard, rings (seeds 0-5) and the held-out ring12w, spiral10 (seeds 0-3), by rounds of seeds.
# D's cells are session 14's recorded ones (objectives2d_dsm_curriculum_s14.log).
source "$(dirname "$0")/objectives2d_gain_sm_s16_run.sh"
G='{"objective": "dsm", "input_gain": 1.4}'
for s in moons checkerboard rings; do run $s 0,1,2 "$G"; done
for s in ring12w spiral10; do run $s 0,1 "$G"; done
for s in moons checkerboard rings; do run $s 3,4,5 "$G"; done
for s in ring12w spiral10; do run $s 2,3 "$G"; done
echo "## $(date -u +%H:%M:%S) stage 2 done" >> $LOG
