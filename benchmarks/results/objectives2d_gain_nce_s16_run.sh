# Sourced by the session-16 input_gain runs for nce (issue 15): `run SETS SEEDS JSON` appends one ebmlab probe call
# (objectives2d_nce_noise_s12_probe.py) to objectives2d_gain_nce_s16.log after a "##" line with the time, the
# arguments and the load. This checkout's src/, one torch thread, nice 5.
cd "$(dirname "${BASH_SOURCE[0]}")"
LOG=objectives2d_gain_nce_s16.log
ENV="env OMP_NUM_THREADS=1 PYTHONPATH=$PWD/../../src nice -n 5 /work/main/.venv-bench/bin/python"
D='{"objective": "nce"}'
G='{"objective": "nce", "input_gain": 1.4}'
run() {   # run SETS SEEDS JSON
  echo "## $(date -u +%H:%M:%S) probe $1 $2 '$3'  (load: $(cut -d' ' -f1-3 /proc/loadavg))" >> $LOG
  $ENV objectives2d_nce_noise_s12_probe.py "$1" "$2" "$3" >> $LOG 2>&1
}
