#!/usr/bin/env bash
# The GPU check (issue 11): on a CUDA machine, train the `base` DiT preset with FSDP2 on one GPU for a few hundred
# steps and print samples/s, MFU and peak memory. Never needed by the tests; run it whenever a GPU is at hand and put
# its output in the closing note.
#   bash scripts/gpu_check.sh [STEPS]        (default 300; data and runs under $WORK, default /tmp/kinetoscope-gpu)
#   CPU=1 bash scripts/gpu_check.sh 3        the same path on the CPU with the tiny preset and 8 world clips: the
#                                            test suite's check that this script works (tests/test_parallel.py)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
STEPS=${1:-300}
WORK=${WORK:-/tmp/kinetoscope-gpu}
mkdir -p "$WORK"
if [ "${CPU:-0}" = 1 ]; then
  MODEL=tiny CLIPS=8 WORKERS=1
else
  MODEL=base CLIPS=512 WORKERS=8
  "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'gpu_check: no CUDA device here')"
  "$PY" -c "import torch; p = torch.cuda.get_device_properties(0); print(f'{p.name}, {p.total_memory / 2**30:.0f} GiB')"
fi
[ -f "$WORK/world/manifest.jsonl" ] || "$PY" -m kinetoscope world -o "$WORK/world" --clips $CLIPS --workers $WORKERS -q
cat > "$WORK/base.json" <<JSON
{"model": "$MODEL", "steps": $STEPS, "warmup": 30, "tokens": 16384, "max_batch": 128, "save_every": 100000,
 "log_every": 10, "parallel": "fsdp"}
JSON
rm -rf "$WORK/run"
"$PY" -m torch.distributed.run --standalone --nproc_per_node 1 -m kinetoscope train dit --config "$WORK/base.json" \
  --data "$WORK/world" -o "$WORK/run" -q
"$PY" - "$WORK/run/metrics.jsonl" <<'PYEOF'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
tail = rows[len(rows) // 2:]  # the second half: past warm-up and the first compiles of each bucket
print(f"steps {rows[-1]['step']}, loss {rows[-1]['loss']:.4f}")
print(f"samples/s {statistics.median(r['samples_per_s'] for r in tail):.1f}, "
      f"tokens/s {statistics.median(r['tokens_per_s'] for r in tail):,.0f}, "
      f"MFU {statistics.median(r['mfu'] for r in tail):.1%}, "
      f"peak memory {max(r.get('max_memory_gib', 0) for r in rows):.2f} GiB")
PYEOF
