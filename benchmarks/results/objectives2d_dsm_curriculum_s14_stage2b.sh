#!/bin/bash
# Session 14: the rest of stage 2 after round 3-5 of the variant (which objectives2d_dsm_curriculum_s14_stage2.sh
# started; its script was stopped at 23:37 and replaced by this one, so that a stop at the deadline leaves the
# default and the variant paired on the same seeds set by set). $1: the chosen variant's JSON.
source "$(dirname "$0")/objectives2d_dsm_curriculum_s14_run.sh"     # cd, LOG, PY, run()
VAR="$1"
DEF='{"objective": "dsm"}'
[ -n "$2" ] && while kill -0 "$2" 2>/dev/null; do sleep 5; done     # $2: the running probe of round 3-5
run ring12w,spiral10,checkerboard,moons,rings 3,4,5 "$DEF"
for set in ring12w spiral10 checkerboard moons rings; do
  run $set 6,7,8 "$VAR"
  run $set 6,7,8 "$DEF"
done
run swiss-roll,two-spirals 6,7,8 "$VAR"      # the default's seeds 6-8 are recorded
# reproduction check of a reused default cell: session 11's two-spirals seed 3 was +0.077176 (objectives2d_dsm_gap_s11.md)
run two-spirals 3 "$DEF"
echo "## $(date -u +%H:%M:%S) stage 2 done" >> $LOG
