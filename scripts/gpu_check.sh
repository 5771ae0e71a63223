#!/usr/bin/env bash
# The prepared device check, for a session lent a GPU machine (the `device` tool runs it from the repo root):
#   1. the engine's tests (they pin the CPU for their oracles) and the CLI's --device auto run, which resolves to
#      cuda/bfloat16 there;
#   2. scoring throughput of an albert-large-v2-shaped model against the fill-mask pipeline (bar: >= 50x the
#      per-sentence pipeline);
#   3. all 1,508 CrowS-Pairs pairs through the batched loop (bar: < 30 s on one H100-class GPU), when the data
#      file is carried (CROWS=path/to/crows_pairs_anonymized.csv; CC BY-SA, never committed).
# Logs go to $OUT (the device tool brings them back). Needs torch with CUDA and the project's dependencies.
set -uo pipefail
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
python3 -c "import torch, sys; print(torch.__version__, torch.cuda.get_device_name(0)); sys.exit(not torch.cuda.is_available())" \
  || { echo "no CUDA device: nothing to check"; exit 2; }
status=0
python3 -m pytest -q -p no:cacheprovider tests/test_engine.py tests/test_forward.py tests/test_benchmarks_engine.py \
  "tests/test_cli.py::test_summary" 2>&1 | tee "$OUT/pytest.log" || status=1
python3 bench/throughput.py --device cuda --baseline-items 40 2>&1 | tee "$OUT/throughput.log" || status=1
if [ -n "${CROWS:-}" ] && [ -f "$CROWS" ]; then
  python3 bench/crows_speed.py --data "$CROWS" --device cuda --dtype auto --pairs 0 --skip-reference \
    2>&1 | tee "$OUT/crows.log" || status=1
else
  echo "CrowS-Pairs timing skipped: set CROWS to the carried data file" | tee "$OUT/crows.log"
fi
exit $status
