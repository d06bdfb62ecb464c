#!/bin/bash
# Beyond the rule (information only, after extra2 turned eight-gaussians level at nine seeds): seeds 6-8 of the other
# three tuning sets, for nine-seed medians as in issue 15's table. Pinwheel's preset cells for 6-8 are recorded
# (objectives2d_dsm_curriculum_seeds3to8_s13.log); two-spirals' and swiss-roll's are not, so D runs beside G there.
source "$(dirname "$0")/objectives2d_gain_sm_s16_run.sh"
G='{"objective": "dsm", "input_gain": 1.4}'
run pinwheel 6,7,8 "$G"
for s in two-spirals swiss-roll; do run $s 6,7,8 "$G"; run $s 6,7,8 '{"objective": "dsm"}'; done
echo "## $(date -u +%H:%M:%S) extra3 done" >> $LOG
