#!/usr/bin/env bash
# cuda_profile.sh - per-kernel time and DRAM traffic of one decode step on the GPU (Nsight Compute),
# summed by kernel name: where a token's time goes. Run on a GPU machine after scripts/gpu_check.sh
# built build-cuda and made /tmp/m.gguf (or pass a model): bash scripts/cuda_profile.sh [MODEL]
set -eu
cd "$(dirname "$0")/.."
M=${1:-/tmp/m.gguf}
BUILD=${BUILD_DIR:-build-cuda}
OUTD=${OUT:-/tmp}
# bench: load, 1 warm-up token, then -n tokens (or a -p prompt: PP=512 TG=0); skip the first SKIP
# launches, profile COUNT
SKIP=${SKIP:-1500} COUNT=${COUNT:-800}
ncu --clock-control none --launch-skip "$SKIP" --launch-count "$COUNT" \
    --metrics gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum --csv \
    "./$BUILD/trainyard" bench -m "$M" --device cuda -p ${PP:-0} -n ${TG:-8} -r 1 --no-bandwidth >"$OUTD/ncu.csv" 2>"$OUTD/ncu.err" || true
python3 - "$OUTD/ncu.csv" <<'PY'
import csv, sys, collections, re
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
hdr = rows[0]; rows = rows[1:]
ki, mi, vi, ui = hdr.index("Kernel Name"), hdr.index("Metric Name"), hdr.index("Metric Value"), hdr.index("Metric Unit")
idi = hdr.index("ID")
per = collections.defaultdict(dict)
names = {}
for r in rows:
    v = float(r[vi].replace(",", ""))
    u = r[ui]
    if u in ("nsecond", "ns"): v *= 1e-3
    elif u in ("usecond", "us"): pass
    elif u in ("msecond", "ms"): v *= 1e3
    elif u == "Kbyte": v *= 1e3
    elif u == "Mbyte": v *= 1e6
    elif u == "Gbyte": v *= 1e9
    per[r[idi]][r[mi]] = v
    names[r[idi]] = re.sub(r"\(.*", "", r[ki])[:60]
agg = collections.defaultdict(lambda: [0, 0.0, 0.0])
for i, m in per.items():
    a = agg[names[i]]
    a[0] += 1; a[1] += m.get("gpu__time_duration.sum", 0); a[2] += m.get("dram__bytes_read.sum", 0) + m.get("dram__bytes_write.sum", 0)
tot = sum(a[1] for a in agg.values())
print(f"{len(per)} kernels, {tot:.0f} us of kernel time")
print(f"{'kernel':60s} {'n':>5s} {'us':>9s} {'%':>6s} {'GB/s':>8s}")
for k, a in sorted(agg.items(), key=lambda x: -x[1][1]):
    print(f"{k:60s} {a[0]:5d} {a[1]:9.1f} {100*a[1]/tot:6.1f} {a[2]/(a[1]*1e-6)/1e9 if a[1] else 0:8.0f}")
PY
