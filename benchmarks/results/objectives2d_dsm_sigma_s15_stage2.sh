#!/bin/bash
# Stage 2 of the session-15 dsm final-level runs, for the candidate the rule chose: usage
#   ./objectives2d_dsm_sigma_s15_stage2.sh SIGMA 'JSON'   (SIGMA the candidate's final level, JSON its settings)
# The peers' checks (reproduce a recorded cell at 0.1; ebmkit vs torchebm at SIGMA on one seed), the peers at SIGMA
# on the four tuning sets, then by rounds of seeds the candidate on the check sets and the peers on the other
# built-in sets; torchebm last where it was not needed by the check.
source "$(dirname "$0")/objectives2d_dsm_sigma_s15_run.sh"
SIG=$1; V=$2
peer eight-gaussians 0 ebmkit,torchebm 0.1          # recorded +0.047 / +0.047 (objectives2d_s12_full.md)
peer eight-gaussians 0 ebmkit,torchebm $SIG
d=$(grep "^eight-gaussians  *peer .* sigma $SIG seed 0 " $LOG | awk '{print $(NF-2)}' | tr '\n' ' ')
P=$(python3 -c "a,b=map(float,'$d'.split()); print('ebmkit,torchebm' if abs(a-b)>0.001 else 'ebmkit')")
echo "## peers at $SIG eight-gaussians seed 0: $d -> run $P" >> $LOG
peer eight-gaussians 1,2,3,4,5 $P $SIG
peer pinwheel,two-spirals,swiss-roll 0,1,2,3,4,5 $P $SIG
for seeds in 0,1,2 3,4,5; do
  run moons,checkerboard,rings,ring12w,spiral10 $seeds "$V"
  peer moons,checkerboard,rings $seeds $P $SIG
done
if [ "$P" = ebmkit ]; then
  peer eight-gaussians 1,2,3,4,5 torchebm $SIG
  peer pinwheel,two-spirals,swiss-roll,moons,checkerboard,rings 0,1,2,3,4,5 torchebm $SIG
fi
echo "## $(date -u +%H:%M:%S) stage 2 done" >> $LOG
