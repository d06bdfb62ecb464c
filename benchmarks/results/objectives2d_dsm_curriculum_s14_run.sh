# Sourced by objectives2d_dsm_curriculum_s14_stage*.sh (session 14, issue 15): `run SETS SEEDS JSON` appends one
# probe call (objectives2d_nce_noise_s12_probe.py, this checkout's src/, one torch thread) and the load before it to
# objectives2d_dsm_curriculum_s14.log. The runs of record used the helper's worktree as PYTHONPATH (the same code).
cd "$(dirname "${BASH_SOURCE[0]}")"
LOG=objectives2d_dsm_curriculum_s14.log
PY="env OMP_NUM_THREADS=1 PYTHONPATH=$PWD/../../src nice -n 5 /work/main/.venv-bench/bin/python objectives2d_nce_noise_s12_probe.py"
run() {   # run SETS SEEDS JSON
  echo "## $(date -u +%H:%M:%S) probe $1 $2 '$3'  (load: $(cut -d' ' -f1-3 /proc/loadavg))" >> $LOG
  $PY "$1" "$2" "$3" >> $LOG 2>&1
}
