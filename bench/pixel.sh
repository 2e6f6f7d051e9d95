#!/usr/bin/env bash
# medveil pixel decoder benchmark: per-image decode time by transfer syntax, medveil against
# dcmtk's decoders (dcmdrle, dcmdjpeg, dcmdjpls; GDCM's gdcmconv --raw for JPEG 2000, which
# dcmtk 3.6.7 does not decode), in the same run on the same files, with the ratio. Each tool
# decodes each file in its own process and writes it native (medveil convert --decompress),
# so both sides pay process start-up and the write; the ratio is what matters, not the times.
#
# Inputs: synthetic images made here (a 512x512 16-bit CT-like slice, a 512x512 8-bit RGB
# image, a 256x256x8-frame 8-bit ultrasound-like clip), compressed by dcmtk and OpenJPEG into
# every syntax, plus the images of $MV_CORPUS that both tools decode, reported apart.
# Also shown: whether the two outputs hold the same Pixel Data bytes for lossless syntaxes.
# "differ" is not by itself a bug: medveil clears bits above High Bit and sign-extends signed
# samples (docs/pixel.md), dcmtk keeps the stored words; tests/t_pixel.py compares the stored
# values, which must be equal. Images only dcmtk decodes (12-bit lossy JPEG) are counted apart.
#
# Usage: bash bench/pixel.sh [BUILD_DIR]          (default: build)
# Environment:
#   MV_CORPUS              corpus folder (default ../shared/corpus/dev; absent: synthetic only)
#   MV_PIXEL_BENCH_RUNS    timed decodes per file and tool (default 5, after 1 warm-up)
# Exit status: 0 whatever the timings; 1 for a broken setup (no medveil binary, no dcmtk, no
# pydicom/numpy).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-build}
[[ $BUILD = /* ]] || BUILD=$REPO/$BUILD
MV=$BUILD/medveil
RUNS=${MV_PIXEL_BENCH_RUNS:-5}
CORPUS=${MV_CORPUS:-$REPO/../shared/corpus/dev}
PY=/usr/bin/python3

die() { printf 'bench-pixel: %s\n' "$*" >&2; exit 1; }
[[ -x $MV ]] || die "no medveil binary at $MV (build it first)"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "MV_PIXEL_BENCH_RUNS must be a positive integer, not '$RUNS'"
for t in dcmdrle dcmdjpeg dcmdjpls dcmcrle dcmcjpeg dcmcjpls; do
    command -v "$t" > /dev/null || die "dcmtk's $t is missing (apt-get install dcmtk)"
done
"$PY" -c 'import pydicom, numpy' 2> /dev/null || die "python3-pydicom and python3-numpy are needed"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/mv-bench-pixel-XXXXXX")
trap 'rm -rf "$WORK"' EXIT

MEDVEIL=$MV RUNS=$RUNS CORPUS=$CORPUS WORK=$WORK "$PY" - << 'EOF'
import os, shutil, subprocess, time, warnings
import numpy as np
warnings.filterwarnings('ignore')
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import ExplicitVRLittleEndian

MV, RUNS, WORK, CORPUS = os.environ['MEDVEIL'], int(os.environ['RUNS']), os.environ['WORK'], os.environ['CORPUS']
NAMES = {'1.2.840.10008.1.2.5': 'RLE Lossless', '1.2.840.10008.1.2.4.50': 'JPEG Baseline',
         '1.2.840.10008.1.2.4.51': 'JPEG Extended', '1.2.840.10008.1.2.4.57': 'JPEG Lossless P14',
         '1.2.840.10008.1.2.4.70': 'JPEG Lossless SV1', '1.2.840.10008.1.2.4.80': 'JPEG-LS Lossless',
         '1.2.840.10008.1.2.4.81': 'JPEG-LS Near-Lossless', '1.2.840.10008.1.2.4.90': 'JPEG 2000 Lossless',
         '1.2.840.10008.1.2.4.91': 'JPEG 2000'}
ORACLE = {'1.2.840.10008.1.2.5': ['dcmdrle'], '1.2.840.10008.1.2.4.50': ['dcmdjpeg'],
          '1.2.840.10008.1.2.4.51': ['dcmdjpeg'], '1.2.840.10008.1.2.4.57': ['dcmdjpeg'],
          '1.2.840.10008.1.2.4.70': ['dcmdjpeg'], '1.2.840.10008.1.2.4.80': ['dcmdjpls'],
          '1.2.840.10008.1.2.4.81': ['dcmdjpls'], '1.2.840.10008.1.2.4.90': ['gdcmconv', '--raw'],
          '1.2.840.10008.1.2.4.91': ['gdcmconv', '--raw']}
LOSSY = {'1.2.840.10008.1.2.4.50', '1.2.840.10008.1.2.4.51', '1.2.840.10008.1.2.4.81', '1.2.840.10008.1.2.4.91'}


def native(path, arr, bits, pi):
    frames, rows, cols, spp = arr.shape
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = '1.2.840.10008.5.1.4.1.1.3.1' if frames > 1 else '1.2.840.10008.5.1.4.1.1.7'
    meta.MediaStorageSOPInstanceUID = '1.2.3.4.%d' % len(path)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Rows, ds.Columns, ds.SamplesPerPixel = rows, cols, spp
    ds.BitsAllocated = 8 if bits <= 8 else 16
    ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, bits - 1, 0
    ds.PhotometricInterpretation = pi
    if spp > 1:
        ds.PlanarConfiguration = 0
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.PixelData = arr.astype('<u1' if bits <= 8 else '<u2').tobytes()
    ds['PixelData'].VR = 'OB' if bits <= 8 else 'OW'
    ds.is_little_endian, ds.is_implicit_VR = True, False
    ds.save_as(path, write_like_original=False)


def synthetic():
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:512, 0:512]
    body = ((x - 256) ** 2 / 200 ** 2 + (y - 256) ** 2 / 160 ** 2) < 1
    ct = np.where(body, 1000 + 40 * np.sin(x / 17.0) * np.cos(y / 23.0), 0) + rng.normal(0, 12, (512, 512))
    ct = np.clip(ct, 0, 4095).astype(np.int64)[None, :, :, None]
    rgb = np.stack([(x // 2) % 256, (y // 2) % 256, ((x + y) // 4) % 256], -1)
    rgb = np.clip(rgb + rng.normal(0, 6, rgb.shape), 0, 255).astype(np.int64)[None]
    yy, xx = np.mgrid[0:256, 0:256]
    us = np.stack([np.clip(128 + 60 * np.sin((xx + 9 * f) / 11.0) + rng.normal(0, 20, (256, 256)), 0, 255)
                   for f in range(8)]).astype(np.int64)[..., None]
    out = []
    for name, arr, bits, pi in (('ct512x16', ct, 12, 'MONOCHROME2'), ('rgb512x8', rgb, 8, 'RGB'),
                                ('us256x8x8f', us, 8, 'MONOCHROME2')):
        src = os.path.join(WORK, name + '.dcm')
        native(src, arr, bits, pi)
        jobs = [('rle', ['dcmcrle']), ('sv1', ['dcmcjpeg', '+e1']), ('p14', ['dcmcjpeg', '+el', '+sv', '6']),
                ('jls', ['dcmcjpls']), ('jlsnear', ['dcmcjpls', '+en', '+md', '2'])]
        jobs.append(('baseline', ['dcmcjpeg', '+eb']) if bits == 8 else ('extended', ['dcmcjpeg', '+ee']))
        for tag, cmd in jobs:
            dst = os.path.join(WORK, '%s-%s.dcm' % (name, tag))
            if subprocess.run(cmd + [src, dst], capture_output=True).returncode == 0:
                out.append(('synthetic ' + name, dst))
        if shutil.which('opj_compress'):
            streams = []
            for f in range(arr.shape[0]):
                pnm = os.path.join(WORK, '%s-%d.%s' % (name, f, 'ppm' if arr.shape[3] == 3 else 'pgm'))
                mx = (1 << bits) - 1
                with open(pnm, 'wb') as fh:
                    fh.write(b'P%d\n%d %d\n%d\n' % (6 if arr.shape[3] == 3 else 5, arr.shape[2], arr.shape[1], mx))
                    fh.write(arr[f].astype('>u2' if mx > 255 else 'u1').tobytes())
                subprocess.run(['opj_compress', '-i', pnm, '-o', pnm + '.j2k'], capture_output=True)
                streams.append(open(pnm + '.j2k', 'rb').read())
            ds = pydicom.dcmread(src)
            ds.PixelData = encapsulate(streams)
            ds['PixelData'].VR = 'OB'
            ds['PixelData'].is_undefined_length = True
            ds.file_meta.TransferSyntaxUID = '1.2.840.10008.1.2.4.90'
            dst = os.path.join(WORK, name + '-j2k.dcm')
            ds.save_as(dst)
            out.append(('synthetic ' + name, dst))
    return out


def corpus_files():
    out = []
    if not os.path.isdir(CORPUS):
        print('bench-pixel: no corpus at %s: synthetic images only' % CORPUS)
        return out
    for root, _, files in os.walk(CORPUS):
        for f in sorted(files):
            p = os.path.join(root, f)
            try:
                ds = pydicom.dcmread(p, stop_before_pixels=True)
                if str(ds.file_meta.TransferSyntaxUID) in ORACLE and 'Rows' in ds:
                    out.append(('corpus', p))
            except Exception:
                pass
    return out


def timed(cmd):
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True)
    return time.perf_counter() - t0, r.returncode


def pixels(path):
    try:
        return pydicom.dcmread(path).PixelData
    except Exception:
        return None


rows = []
unsupported = {}
for group, path in synthetic() + corpus_files():
    ts = str(pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID)
    oracle = ORACLE[ts]
    if not shutil.which(oracle[0]):
        continue
    ours_out, theirs_out = os.path.join(WORK, 'ours.dcm'), os.path.join(WORK, 'theirs.dcm')
    ours_cmd = [MV, 'convert', '--decompress', '--no-sync', '--quiet', path, ours_out]
    theirs_cmd = oracle + [path, theirs_out]
    # Warm-up, and both must succeed to be compared at all.
    ok_ours, ok_theirs = timed(ours_cmd)[1] == 0, timed(theirs_cmd)[1] == 0
    if not ok_theirs:
        continue
    if not ok_ours:
        unsupported.setdefault(NAMES[ts], []).append(os.path.basename(path))
        continue
    same = None
    if ts not in LOSSY:
        a, b = pixels(ours_out), pixels(theirs_out)
        same = a is not None and a == b
    t_ours = min(timed(ours_cmd)[0] for _ in range(RUNS))
    t_theirs = min(timed(theirs_cmd)[0] for _ in range(RUNS))
    rows.append((group, ts, os.path.basename(path), os.path.getsize(path), t_ours, t_theirs, oracle[0], same))

print('Pixel decode, one process per file, best of %d runs (ms per image; ratio = oracle / medveil, >1: medveil faster)' % RUNS)
print('%-22s %-22s %10s %10s %7s  %-9s %s' % ('input', 'syntax', 'medveil', 'oracle', 'ratio', 'oracle', 'same bytes'))
by_syntax = {}
for group, ts, name, size, to, tt, oracle, same in rows:
    key = (group.split()[0], ts, oracle)
    by_syntax.setdefault(key, []).append((to, tt, same))
    if group.startswith('synthetic'):
        print('%-22s %-22s %10.1f %10.1f %7.2f  %-9s %s' % (name[:22], NAMES[ts], to * 1000, tt * 1000, tt / to, oracle,
                                                        '-' if same is None else 'yes' if same else 'differ'))
print()
print('By syntax (geometric mean of per-image ratios; files = images both decode):')
print('%-9s %-22s %6s %12s %12s %7s  %s' % ('inputs', 'syntax', 'files', 'medveil ms', 'oracle ms', 'ratio', 'oracle'))
for (group, ts, oracle), v in sorted(by_syntax.items()):
    ratios = np.array([tt / to for to, tt, _ in v])
    mism = sum(1 for _, _, s in v if s is False)
    print('%-9s %-22s %6d %12.1f %12.1f %7.2f  %s%s' % (group, NAMES[ts], len(v), 1000 * np.mean([x[0] for x in v]),
                                                     1000 * np.mean([x[1] for x in v]), float(np.exp(np.log(ratios).mean())),
                                                     oracle, '  (%d differ)' % mism if mism else ''))
for name, files in sorted(unsupported.items()):
    print('only the oracle decodes (%s): %d file(s), e.g. %s' % (name, len(files), files[0]))
EOF
