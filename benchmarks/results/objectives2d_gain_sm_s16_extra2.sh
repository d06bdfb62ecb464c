#!/bin/bash
# Beyond the rule (information only, after everything above): dsm G on eight-gaussians seeds 6-8, the one tuning set
# where G is clearly worse, against the preset's recorded seeds 6-8 (objectives2d_dsm_curriculum_seeds3to8_s13.log).
source "$(dirname "$0")/objectives2d_gain_sm_s16_run.sh"
run eight-gaussians 6,7,8 '{"objective": "dsm", "input_gain": 1.4}'
echo "## $(date -u +%H:%M:%S) extra2 done" >> $LOG
