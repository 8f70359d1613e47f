#!/usr/bin/env bash
# One-shot GPU run of benchmarks/retrain.py (H100 sizes: 2,000,000 rows), results under $OUT.
#
#   OUT=/some/dir bash benchmarks/retrain_gpu.sh      # default OUT: benchmarks/results
#
# Needs a python whose torch sees CUDA: $PYTHON if set, else .venv/bin/python, python3, python
# (the first one with torch.cuda.is_available()). The repo goes on PYTHONPATH (no install);
# only if `import driftd` still fails is `pip install -e . --no-deps` tried, and the few modules
# the benchmark imports are pip-installed only when missing (this may fail offline: the
# diagnostics say which). Wall clock: the benchmark is killed after BENCH_TIMEOUT_S (330 s).
# Writes: retrain_gpu.json (rows, params, machine), retrain_gpu.txt (the printed table and
# progress), nvidia-smi.txt, env.txt.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO="$PWD"
OUT="${OUT:-$REPO/benchmarks/results}"
mkdir -p "$OUT"
BENCH_TIMEOUT_S="${BENCH_TIMEOUT_S:-330}"
ENV_TXT="$OUT/env.txt"
: >"$ENV_TXT"

say() { echo "[retrain_gpu] $*" | tee -a "$ENV_TXT"; }

say "repo: $REPO; OUT: $OUT; $(date -u +%FT%TZ)"
if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi | tee "$OUT/nvidia-smi.txt" || say "nvidia-smi failed (rc=$?)"
else
    say "nvidia-smi not found: GPU utilisation falls back to torch.cuda.utilization (needs pynvml)"
fi

# -- a python with CUDA torch
PY=""
for cand in "${PYTHON:-}" "$REPO/.venv/bin/python" python3 python; do
    [ -n "$cand" ] || continue
    command -v "$cand" >/dev/null 2>&1 || [ -x "$cand" ] || continue
    probe="$("$cand" -c 'import torch; print(torch.__version__, torch.version.cuda, torch.cuda.is_available())' 2>&1 | tail -1)" || true
    say "candidate $cand: torch, cuda, available = $probe"
    if [[ "$probe" == *" True" ]]; then
        PY="$cand"
        break
    fi
done
if [ -z "$PY" ]; then
    say "no python with CUDA torch; trying: python3 -m pip install torch (needs network)"
    if python3 -m pip install --retries 1 --timeout 20 torch >>"$ENV_TXT" 2>&1 \
        && python3 -c 'import torch, sys; sys.exit(not torch.cuda.is_available())'; then
        PY=python3
    else
        say "FAILED: no torch with CUDA could be found or installed; see $ENV_TXT"
        exit 3
    fi
fi
say "using $PY ($("$PY" -c 'import sys; print(sys.version.split()[0])'))"

# -- driftd and the modules the benchmark imports
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
if ! "$PY" -c 'import driftd' 2>>"$ENV_TXT"; then
    say "import driftd failed with PYTHONPATH; pip install -e . --no-deps"
    "$PY" -m pip install --no-build-isolation -e . --no-deps >>"$ENV_TXT" 2>&1 \
        || say "pip install -e . failed (see $ENV_TXT)"
fi
missing=()
for mod in numpy pyarrow scipy rich msgspec pydantic pydantic_settings sqlalchemy; do
    "$PY" -c "import $mod" 2>/dev/null || missing+=("$mod")
done
if [ "${#missing[@]}" -gt 0 ]; then
    pkgs=()
    for m in "${missing[@]}"; do pkgs+=("${m//_/-}"); done
    say "missing modules: ${missing[*]}; pip install ${pkgs[*]}"
    "$PY" -m pip install --retries 1 --timeout 20 "${pkgs[@]}" >>"$ENV_TXT" 2>&1 \
        || say "pip install failed for some of: ${pkgs[*]} (see $ENV_TXT)"
fi
if ! "$PY" -c 'import driftd.retrain.tabular, rich' 2>>"$ENV_TXT"; then
    say "FAILED: the benchmark's imports do not work; see $ENV_TXT"
    exit 4
fi
"$PY" - <<'EOF' 2>&1 | tee -a "$ENV_TXT" || say "environment probe failed (above)"
import numpy, pyarrow, torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "gpu", torch.cuda.get_device_name(0))
print("numpy", numpy.__version__, "pyarrow", pyarrow.__version__, "cpus", __import__("os").cpu_count())
try:
    import triton
    print("triton", triton.__version__)
except ImportError:
    print("triton: not installed (the compile=True rows will say failed)")
EOF

# -- the benchmark (progress and the table both go to retrain_gpu.txt)
rc=0
timeout --kill-after=15 "$BENCH_TIMEOUT_S" "$PY" -u benchmarks/retrain.py \
    --device cuda --rows 2000000 --train-rows 2000000 --epochs 30 --compile \
    --baseline-s 8 --workers 4 --out "$OUT/retrain_gpu.json" \
    2>&1 | tee "$OUT/retrain_gpu.txt" || rc=$?
if [ "$rc" -ne 0 ]; then
    say "FAILED: benchmarks/retrain.py exited with $rc (124: over ${BENCH_TIMEOUT_S} s)"
    exit "$rc"
fi
say "done: $OUT/retrain_gpu.json, $OUT/retrain_gpu.txt"
