#!/bin/bash
# Whole-process start-up of a tiny `stelab run` and a tiny one-cell `stelab sweep` (issue 21 item 5):
# median wall time of 5 runs each. Usage: bench/startup.sh [VENV_BIN]   (default: .venv/bin)
# To time another commit in the same sitting: git archive COMMIT src | tar -x -C /tmp/base
# and run with PYTHONPATH=/tmp/base/src bench/startup.sh (it then imports that stelab).
set -u
B=${1:-.venv/bin}
T=$(mktemp -d)
cat > "$T/run.toml" <<'TOML'
[model]
d = 16
m = 1
activation = "sign"
[data]
distribution = "gaussian"
normalization = "none"
[noise]
kind = "none"
level = 0.0
[train]
n = 64
steps = 50
ste = "identity"
step_size = 0.5
init = "small"
[run]
trials = 4
seed = 0
device = "cpu"
TOML
sed 's/^d = 16/d = [16]/' "$T/run.toml" > "$T/sweep.toml"
printf '[sweep]\naxes = ["model.d"]\n' >> "$T/sweep.toml"
# wall seconds, and CPU seconds (user + sys of the process and its workers: on a loaded machine
# the wall time mostly measures the wait for a core, the CPU time much less so)
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for what in run sweep; do
  for _ in 1 2 3 4 5; do
    rm -rf "$T/out"
    if [ "$what" = run ]; then cmd=("$B/stelab" run "$T/run.toml" --out "$T/out" --overwrite)
    else cmd=("$B/stelab" sweep "$T/sweep.toml" --out "$T/out"); fi
    /usr/bin/time -f "%e %U %S" -o "$T/time" "${cmd[@]}" > /dev/null 2>&1 \
      || echo "failed: ${cmd[*]}" >&2
    cat "$T/time"
  done > "$T/times"
  wall=$(awk '{print $1}' "$T/times" | median)
  cpu=$(awk '{print $2 + $3}' "$T/times" | median)
  echo "tiny stelab $what, median of 5: wall $wall s, CPU $cpu s"
done
rm -rf "$T"
