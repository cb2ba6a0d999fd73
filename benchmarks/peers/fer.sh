#!/usr/bin/env bash
# Emolens against the `fer` package (its MTCNN and Haar face detectors) on the same clips, in one run:
#
#     bash benchmarks/peers/fer.sh > benchmarks/peers/fer.md      # from a checkout with Emolens in .venv
#
# fer goes into a virtualenv of its own (FER_VENV, default benchmarks/peers/.fer-venv: TensorFlow and PyTorch
# for CPU, about 1.5 GB), never into Emolens's. The clips are the pipeline benchmark's (real faces, see
# emolens.bench.media); both tools read the same decoded frames from memory, and the rounds alternate the
# tools so that both see the same load. Settings: ROUNDS (3), CLIP_S (4 seconds per clip), EMOLENS_PYTHON
# (.venv/bin/python), TORCH_INDEX (PyTorch's CPU wheels; PyPI's torch would pull the CUDA libraries).
set -euo pipefail
cd "$(dirname "$0")/../.."
here=benchmarks/peers
EMOLENS_PYTHON=${EMOLENS_PYTHON:-.venv/bin/python}
FER_VENV=${FER_VENV:-$here/.fer-venv}
ROUNDS=${ROUNDS:-3}
CLIP_S=${CLIP_S:-4}
TORCH_INDEX=${TORCH_INDEX:-https://download.pytorch.org/whl/cpu}

if [ ! -x "$FER_VENV/bin/python" ]; then
  echo "installing fer into $FER_VENV (once)" >&2
  python3 -m venv "$FER_VENV"
  pip="$FER_VENV/bin/pip"
  # fer's own requirements pull PyPI's CUDA build of PyTorch and a desktop OpenCV: install what it imports instead.
  "$pip" install --quiet --no-deps "fer==22.5.1"
  # It loads its Keras 2 model through tensorflow.keras (TensorFlow 2.15 is the last with Keras 2) and imports
  # moviepy.editor (gone in moviepy 2).
  "$pip" install --quiet "tensorflow-cpu==2.15.*" "numpy<2" "opencv-python-headless==4.10.*" "moviepy<2" \
    pandas tqdm requests pillow
  # PyTorch's own index has CPU-only wheels; where it cannot be reached, PyPI's (the CUDA build, about 2.5 GB
  # more, which runs on the CPU as well).
  if "$pip" install --quiet --index-url "$TORCH_INDEX" "torch==2.2.*" "torchvision==0.17.*" \
      || "$pip" install --quiet "torch==2.2.*" "torchvision==0.17.*"; then
    "$pip" install --quiet --no-deps "facenet-pytorch==2.6.0"  # fer's MTCNN
  else
    echo "PyTorch did not install: fer's MTCNN detector cannot be measured" >&2
  fi
fi
detectors=haar
if "$FER_VENV/bin/python" -c "import facenet_pytorch" 2>/dev/null; then detectors="mtcnn haar"; fi

clips=$(mktemp -d)
results=$(mktemp)
trap 'rm -rf "$clips" "$results"' EXIT
"$EMOLENS_PYTHON" "$here/emolens_side.py" clips "$clips" "$CLIP_S" >&2
for round in $(seq "$ROUNDS"); do
  echo "round $round of $ROUNDS" >&2
  for detector in $detectors; do
    "$FER_VENV/bin/python" "$here/fer_side.py" "$detector" "$clips" >> "$results"
  done
  "$EMOLENS_PYTHON" "$here/emolens_side.py" measure "$clips" >> "$results"
done
"$EMOLENS_PYTHON" "$here/emolens_side.py" table "$results"
