# Sourced by the session-15 dsm final-level runs (issue 15): `run SETS SEEDS JSON` appends one ebmlab probe call
# (objectives2d_nce_noise_s12_probe.py) and `peer SETS SEEDS PEERS SIGMA` one peer call
# (objectives2d_dsm_sigma_s15_peer.py) to objectives2d_dsm_sigma_s15.log, each after a "##" line with the time, the
# arguments and the load. This checkout's src/, one torch thread, nice 5. The runs of record used the helper's
# worktree /work/wt/dsmsig/src as PYTHONPATH (the same code).
cd "$(dirname "${BASH_SOURCE[0]}")"
LOG=objectives2d_dsm_sigma_s15.log
ENV="env OMP_NUM_THREADS=1 PYTHONPATH=$PWD/../../src nice -n 5 /work/main/.venv-bench/bin/python"
run() {   # run SETS SEEDS JSON
  echo "## $(date -u +%H:%M:%S) probe $1 $2 '$3'  (load: $(cut -d' ' -f1-3 /proc/loadavg))" >> $LOG
  $ENV objectives2d_nce_noise_s12_probe.py "$1" "$2" "$3" >> $LOG 2>&1
}
peer() {  # peer SETS SEEDS PEERS SIGMA
  echo "## $(date -u +%H:%M:%S) peer $1 $2 $3 $4  (load: $(cut -d' ' -f1-3 /proc/loadavg))" >> $LOG
  $ENV objectives2d_dsm_sigma_s15_peer.py "$1" "$2" "$3" "$4" >> $LOG 2>&1
}
