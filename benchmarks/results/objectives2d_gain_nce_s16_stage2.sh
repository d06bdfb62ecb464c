#!/bin/bash
# Stage 2 of the session-16 input_gain runs for nce (only run if stage 1 passed): the held-out ring12w and spiral10
# with D and G interleaved by seed, then G on moons, checkerboard, pinwheel, rings (D's cells are recorded), seeds 0-2.
source "$(dirname "$0")/objectives2d_gain_nce_s16_run.sh"
for s in ring12w spiral10; do
  for seed in 0 1 2; do run $s $seed "$D"; run $s $seed "$G"; done
done
for s in moons checkerboard pinwheel rings; do run $s 0,1,2 "$G"; done
echo "## $(date -u +%H:%M:%S) stage 2 done" >> $LOG
