#!/usr/bin/env bash
# Device check: one short training per model (SpaVAE, SpaLDVAE, DPVAE, SIVAE) with
# accelerator="auto", inference, save/load round-trips and SpaVAE's predict_at, as a prepared
# script (tests/device_check.py). On a GPU machine it runs on CUDA (pass --require-cuda to fail
# when CUDA is missing); on a CPU machine the same checks run on the CPU.
#
#   bash tests/device_check.sh                 # all checks, whatever device torch finds
#   bash tests/device_check.sh --require-cuda  # on the GPU machine
#   bash tests/device_check.sh spavae          # one model
#
# Python: $PYTHON, else the repository's .venv, else python3.
set -euo pipefail
cd "$(dirname "$0")/.."
py="${PYTHON:-}"
if [ -z "$py" ]; then
  if [ -x .venv/bin/python ]; then py=.venv/bin/python; else py=python3; fi
fi
export MPLBACKEND=Agg PYTHONUNBUFFERED=1
exec "$py" tests/device_check.py "$@"
