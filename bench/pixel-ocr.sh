#!/usr/bin/env bash
# medveil burned-in text benchmark: per image, the time of `medveil deid` header-only and with
# --option clean-pixel-data --scan-all-pixels (one file, one thread), and the split of the
# pixel step into decode, OCR, verification and re-encode as the review page reports it.
# See docs/pixel-clean.md. Not a test: exits 0 whatever the timings, 1 for a broken setup.
#
# Usage: bash bench/pixel-ocr.sh [BUILD_DIR]     (default: build)
#
# Environment:
#   MV_CORPUS   the corpus (default ../shared/corpus/dev relative to the repo root); the images
#               timed are the github-presidio ones and those of github-fo-dicom whose Burned In
#               Annotation is YES, plus a few plain CT/MR/US images when present
#   MV_PIXEL_BENCH_RUNS   timed runs per image and mode (default 3; the best is reported)
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
case $build in /*) ;; *) build=$here/$build ;; esac
medveil=$build/medveil
corpus=${MV_CORPUS:-$here/../shared/corpus/dev}
runs=${MV_PIXEL_BENCH_RUNS:-3}
[ -x "$medveil" ] || { echo "pixel-ocr bench: no medveil binary in $build" >&2; exit 1; }
[ -d "$corpus" ] || { echo "pixel-ocr bench: SKIP: no corpus at $corpus"; exit 0; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mapfile -t images < <(/usr/bin/python3 - "$corpus" <<'EOF'
import os, sys
root = sys.argv[1]
out = []
for sub in ('github-presidio',):
    for d, _, fs in os.walk(os.path.join(root, sub)):
        out += [os.path.join(d, f) for f in sorted(fs) if f.endswith('.dcm')]
try:
    import pydicom
    for d, _, fs in os.walk(os.path.join(root, 'github-fo-dicom')):
        for f in sorted(fs):
            p = os.path.join(d, f)
            try:
                ds = pydicom.dcmread(p, stop_before_pixels=True, force=True)
            except Exception:
                continue
            if str(ds.get('BurnedInAnnotation', '')).upper() == 'YES':
                out.append(p)
except ImportError:
    pass
for rel in ('github-fo-dicom/Tests/FO-DICOM.Benchmark/Data/ct.dcm', 'github-fo-dicom/Tests/FO-DICOM.Benchmark/Data/mr.dcm',
            'github-fo-dicom/Tests/FO-DICOM.Benchmark/Data/multiframe.dcm'):
    p = os.path.join(root, rel)
    if os.path.exists(p):
        out.append(p)
print('\n'.join(out))
EOF
)

best() { # best wall time in ms of "$@" over $runs runs
    local b=999999999 s e t
    for _ in $(seq "$runs"); do
        rm -rf "$work/o" "$work/o-quarantine"
        s=$(date +%s%N)
        "$@" >/dev/null 2>&1
        e=$(date +%s%N)
        t=$(( (e - s) / 1000000 ))
        [ "$t" -lt "$b" ] && b=$t
    done
    echo "$b"
}

printf '%-34s %-24s %10s %7s %9s %9s %8s %8s %8s %8s  %s\n' image syntax size frames \
    header_ms pixel_ms decode ocr verify encode outcome
for img in "${images[@]}"; do
    [ -n "$img" ] || continue
    rm -rf "$work/in" && mkdir -p "$work/in" && cp "$img" "$work/in/x.dcm"
    ts=$(dcmdump -q +P 0002,0010 "$img" 2>/dev/null | sed -n 's/.*=\([^ ]*\).*/\1/p;s/.*\[\(.*\)\].*/\1/p' | head -1)
    dims=$(/usr/bin/python3 -c "
import pydicom,sys
d=pydicom.dcmread(sys.argv[1],stop_before_pixels=True,force=True)
print('%sx%s %s' % (d.get('Columns','?'), d.get('Rows','?'), d.get('NumberOfFrames',1) or 1))" "$img" 2>/dev/null || echo '? ?')
    h=$(best "$medveil" deid --quiet -j 1 "$work/in" -o "$work/o")
    p=$(best "$medveil" deid --quiet -j 1 --option clean-pixel-data --scan-all-pixels "$work/in" -o "$work/o")
    rm -rf "$work/o" "$work/o-quarantine" "$work/r.html"
    "$medveil" deid --quiet -j 1 --option clean-pixel-data --scan-all-pixels --mask-all-text \
        --review "$work/r.html" "$work/in" -o "$work/o" >/dev/null 2>&1
    split=$(sed -n 's/.*decode \([0-9]*\) ms, OCR \([0-9]*\) ms, verification \([0-9]*\) ms, encode \([0-9]*\) ms.*/\1 \2 \3 \4/p' \
        "$work/r.html" 2>/dev/null | head -1)
    [ -n "$split" ] || split='- - - -'
    if [ -e "$work/o/in/x.dcm" ]; then outcome=released; else outcome=quarantined; fi
    # shellcheck disable=SC2086
    printf '%-34s %-24s %10s %7s %9s %9s %8s %8s %8s %8s  %s\n' "$(basename "$img" | cut -c1-34)" "${ts:-?}" \
        ${dims} "$h" "$p" $split "$outcome"
done
echo "header_ms: deid without pixel options; pixel_ms: with clean-pixel-data --scan-all-pixels (best of $runs,"
echo "one thread, process start included). decode/ocr/verify/encode: ms of the pixel step with --mask-all-text"
echo "(so the image is masked and re-encoded), from the review page; '-' when nothing was masked or decoded."
exit 0
