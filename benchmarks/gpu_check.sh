#!/usr/bin/env bash
# Every GPU check and benchmark, Ray-free, for a machine with one GPU and only torch, triton,
# torch-geometric and numpy. Later issues append their checks here. Finishes in a few minutes.
#   bash benchmarks/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python3}
declare -a rows
check() {  # check NAME COMMAND...: run it, keep its last line, record pass/fail
  local name=$1; shift
  local out; out=$("$@" 2>&1); local rc=$?
  echo "== $name (rc=$rc)"; echo "$out" | tail -n 15
  rows+=("$(printf '%-28s %-4s %s' "$name" "$([ $rc -eq 0 ] && echo ok || echo FAIL)" "$(echo "$out" | tail -n 1 | cut -c1-150)")")
}
$PY -c "import torch, triton, torch_geometric; print('torch', torch.__version__, 'triton', triton.__version__, 'pyg', torch_geometric.__version__, 'cuda', torch.cuda.is_available())"
check "ddp step nccl x1"  timeout 240 $PY -m torch.distributed.run --standalone --nproc-per-node 1 benchmarks/gpu_ddp_step.py --backend nccl
check "ddp step gloo x2 (1 GPU)" timeout 240 $PY -m torch.distributed.run --standalone --nproc-per-node 2 benchmarks/gpu_ddp_step.py --backend gloo
check "sigmoid_gate bench"  timeout 120 $PY benchmarks/sigmoid_gate.py
# issue 5: paper-size OneForecast step, fp32 + bf16 vs the released algorithm (~1-2 min)
check "oneforecast paper step" timeout 200 $PY benchmarks/oneforecast_step.py --paper-size --budget-s 120
# issue 8: gated SSL vs full attention per frame at T = 1k, 4k, 16k (< 1 min on a GPU)
check "videoqa ssl vs attention" timeout 120 $PY benchmarks/videoqa_ssl.py
echo
echo "GPU check summary"
printf '%s\n' "${rows[@]}"
