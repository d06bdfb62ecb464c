#!/usr/bin/env bash
# The pictures of docs/img/eco/: run once with the code before the picture fixes (TAG=before) and
# once after (TAG=after), from the repository root:  TAG=after bash docs/img/eco/make_pictures.sh
set -euo pipefail
TAG=${TAG:-after}
W=${W:-/tmp/eco-pictures}
E="python -m ebmlab --threads 1"
OUT=docs/img/eco
mkdir -p "$W"
if [ ! -d "$W/g8" ]; then          # a 2-D run, stopped at 200 steps and resumed to 400
  $E train --data eight-gaussians --out "$W/g8" --steps 200 --log-every 5 --quiet
  $E train --resume "$W/g8" --steps 400 --quiet
  $E train --data checkerboard --out "$W/cb" --steps 300 --log-every 5 --quiet
  $E train --data digits --out "$W/dg" --steps 150 --log-every 5 --quiet
  python - "$W" <<'PY'
import sys
from PIL import Image
from sklearn.datasets import load_digits
d = load_digits().images[7] * (255 / 16)
Image.fromarray(d.astype("uint8")).save(sys.argv[1] + "/digit.png")
PY
fi
rm -rf "$W/g8cb"
$E compose "$W/g8" "$W/cb" --op or --out "$W/g8cb"
$E sample "$W/g8" --n 1000 --out "$OUT/sample-$TAG.png"
$E plot "$W/g8"
cp "$W/g8/curves.png" "$OUT/curves-$TAG.png"
cp "$W/g8/plot.png" "$OUT/plot-$TAG.png"
$E plot "$W/g8cb"
cp "$W/g8cb/plot.png" "$OUT/composite-plot-$TAG.png"
$E eval "$W/g8cb" > "$OUT/composite-eval-$TAG.txt"
$E inpaint "$W/dg" --image "$W/digit.png" --out "$W/digit" --fills 4
cp "$W/digit-inpaint.png" "$OUT/inpaint-$TAG.png"
$E eval "$W/dg" > "$OUT/digits-eval-$TAG.txt"
