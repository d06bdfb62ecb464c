#!/bin/bash
# Beyond the rule (information only; decided after stage 1 had failed and the ssm check's seeds 0-2 were in, and
# cannot change the rule's outcome): (1) ssm seeds 3-5 where the preset's recorded cells exist
# (objectives2d_ssm_seeds3to8_s13.md: pinwheel, two-spirals, moons), after a reproduction check of one of those
# cells (D pinwheel seed 3, recorded +0.035); (2) dsm G on the stage-2 check sets that the rule did not ask for.
# Usage: objectives2d_gain_sm_s16_extra.sh [PID to wait for]. No run starts after 05:00 UTC.
source "$(dirname "$0")/objectives2d_gain_sm_s16_run.sh"
[ -n "$1" ] && while kill -0 "$1" 2>/dev/null; do sleep 5; done
late() { [ "$(date -u +%H%M)" -ge 0500 ]; }
GS='{"objective": "ssm", "input_gain": 1.4}'
GD='{"objective": "dsm", "input_gain": 1.4}'
late || run pinwheel 3 '{"objective": "ssm"}'     # recorded +0.035 (objectives2d_ssm_seeds3to8_s13.md)
late || run pinwheel 3,4,5 "$GS"
for s in moons checkerboard rings; do late || run $s 0,1,2 "$GD"; done
for s in ring12w spiral10; do late || run $s 0,1 "$GD"; done
for s in two-spirals moons; do late || run $s 3,4,5 "$GS"; done
for s in moons checkerboard rings; do late || run $s 3,4,5 "$GD"; done
for s in ring12w spiral10; do late || run $s 2,3 "$GD"; done
echo "## $(date -u +%H:%M:%S) extra done" >> $LOG
