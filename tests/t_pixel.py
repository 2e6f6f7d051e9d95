#!/usr/bin/python3
"""Differential test of the pixel decoders and encoders (src/pixel) against dcmtk, GDCM and pydicom.

Decoding: every image is written native by `medveil convert --decompress` and its samples are
compared with an independent decode of the same input:
  native       the raw Pixel Data read with pydicom (this script's normalisation), and
               pydicom's pixel_array (also for RLE)
  RLE          dcmtk dcmdrle          JPEG baseline/extended/lossless   dcmtk dcmdjpeg
  JPEG-LS      dcmtk dcmdjpls         JPEG 2000                         GDCM gdcmconv --raw
Lossless syntaxes must agree sample for sample; lossy ones within LOSSY_TOLERANCE on at most
LOSSY_SHARE of the samples (dcmtk carries its own IJG build, with its own rounding).
Inputs: synthetic images made here with numpy and pydicom (every bit depth, sign, photometric,
planar configuration, several frames), compressed with dcmtk's dcmcrle, dcmcjpeg (+e1 SV1,
+el process 14 with predictors 2-7, a point transform, +eb baseline), dcmcjpls (lossless, near-lossless)
and OpenJPEG's opj_compress; then every image of $MV_CORPUS (skipped, loudly, when absent).

Encoding: each synthetic image is re-encoded by `medveil convert -t` in RLE, JPEG Lossless SV1,
JPEG-LS Lossless and JPEG 2000 Lossless; dcmtk (or GDCM for JPEG 2000) decodes what medveil
wrote, and the samples must equal the original's.

Under the sanitizer build (MV_SANITIZE=1, or MV_PIXEL_QUICK=1) the native corpus files are
sampled, two per distinct layout (syntax, bits, sign, samples, photometric, planar, frames),
to keep the run under a minute; every compressed corpus file is still checked.

Exit status: 0 when all agree, 1 otherwise, 77 when MEDVEIL, pydicom or dcmtk is missing.
Samples are synthetic or corpus test data; mismatches print positions and values only.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import warnings

TIMEOUT = 60
LOSSY_TOLERANCE = 2
LOSSY_SHARE = 0.01

MEDVEIL = os.environ.get('MEDVEIL')
if not MEDVEIL:
    print('SKIPPED: MEDVEIL is not set')
    sys.exit(77)
try:
    import numpy as np
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.encaps import encapsulate
    from pydicom.uid import ExplicitVRLittleEndian, ExplicitVRBigEndian, ImplicitVRLittleEndian
except ImportError as e:  # pragma: no cover
    print('SKIPPED: pydicom/numpy not importable: %s' % e)
    sys.exit(77)
for tool in ('dcmdrle', 'dcmdjpeg', 'dcmdjpls', 'dcmcrle', 'dcmcjpeg', 'dcmcjpls'):
    if shutil.which(tool) is None:
        print('SKIPPED: dcmtk tool %s not found' % tool)
        sys.exit(77)
HAVE_GDCM = shutil.which('gdcmconv') is not None
HAVE_OPJ = shutil.which('opj_compress') is not None
warnings.filterwarnings('ignore')

RLE = '1.2.840.10008.1.2.5'
JPEG_BASELINE = '1.2.840.10008.1.2.4.50'
JPEG_EXTENDED = '1.2.840.10008.1.2.4.51'
JPEG_LL14 = '1.2.840.10008.1.2.4.57'
JPEG_SV1 = '1.2.840.10008.1.2.4.70'
JLS = '1.2.840.10008.1.2.4.80'
JLS_NEAR = '1.2.840.10008.1.2.4.81'
J2K_LL = '1.2.840.10008.1.2.4.90'
J2K = '1.2.840.10008.1.2.4.91'
NATIVE = {ImplicitVRLittleEndian, ExplicitVRLittleEndian, ExplicitVRBigEndian, '1.2.840.10008.1.2.1.99'}
LOSSY = {JPEG_BASELINE, JPEG_EXTENDED, JLS_NEAR, J2K}
ORACLE = {RLE: 'dcmdrle', JPEG_BASELINE: 'dcmdjpeg', JPEG_EXTENDED: 'dcmdjpeg', JPEG_LL14: 'dcmdjpeg',
          JPEG_SV1: 'dcmdjpeg', JLS: 'dcmdjpls', JLS_NEAR: 'dcmdjpls', J2K_LL: 'gdcmconv', J2K: 'gdcmconv'}

failures = []
counts = {'passed': 0, 'failed': 0, 'skipped': 0}


def run(cmd):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=TIMEOUT)


def samples(path):
    """Native file -> int64 array (frames, rows, cols, spp): stored bits, sign-extended, interleaved."""
    ds = pydicom.dcmread(path, force=True)
    ts = ds.file_meta.TransferSyntaxUID
    rows, cols = int(ds.Rows), int(ds.Columns)
    spp = int(getattr(ds, 'SamplesPerPixel', 1))
    ba, bs = int(ds.BitsAllocated), int(getattr(ds, 'BitsStored', ds.BitsAllocated))
    hb = int(getattr(ds, 'HighBit', bs - 1))
    pr = int(getattr(ds, 'PixelRepresentation', 0))
    planar = int(getattr(ds, 'PlanarConfiguration', 0) or 0) if spp > 1 else 0
    frames = int(getattr(ds, 'NumberOfFrames', 1) or 1)
    photometric = str(getattr(ds, 'PhotometricInterpretation', '')).strip()
    big = ts == ExplicitVRBigEndian
    raw = ds.PixelData
    dt = {8: 'u1', 16: 'u2', 32: 'u4'}[ba]
    if ba == 8 and big and ds['PixelData'].VR == 'OW':
        arr = np.frombuffer(raw, dtype='>u2').astype('<u2').view('u1')
    else:
        arr = np.frombuffer(raw, dtype=('>' if big else '<') + dt)
    if photometric == 'YBR_FULL_422' and spp == 3:
        per = rows * cols * 2
        a = arr[:per * frames].astype(np.int64).reshape(frames, rows * cols // 2, 4)
        full = np.empty((frames, rows * cols // 2, 2, 3), dtype=np.int64)
        full[:, :, 0, 0], full[:, :, 1, 0] = a[:, :, 0], a[:, :, 1]
        for k in (0, 1):
            full[:, :, k, 1], full[:, :, k, 2] = a[:, :, 2], a[:, :, 3]
        v = full.reshape(frames, rows, cols, 3)
    else:
        per = rows * cols * spp
        v = arr[:per * frames].astype(np.int64)
        if planar:
            v = v.reshape(frames, spp, rows, cols).transpose(0, 2, 3, 1)
        else:
            v = v.reshape(frames, rows, cols, spp)
    v = (v >> (hb + 1 - bs)) & ((1 << bs) - 1)
    if pr:
        v = np.where(v >= (1 << (bs - 1)), v - (1 << bs), v)
    return v, photometric


def pydicom_samples(ds):
    """pydicom's pixel_array, normalised as samples() does; None where pydicom cannot."""
    try:
        arr = ds.pixel_array
    except Exception:
        return None
    rows, cols = int(ds.Rows), int(ds.Columns)
    spp = int(getattr(ds, 'SamplesPerPixel', 1))
    frames = int(getattr(ds, 'NumberOfFrames', 1) or 1)
    ba, bs = int(ds.BitsAllocated), int(getattr(ds, 'BitsStored', ds.BitsAllocated))
    hb = int(getattr(ds, 'HighBit', bs - 1))
    if arr.size != frames * rows * cols * spp:
        return None
    v = arr.astype(np.int64).reshape(frames, rows, cols, spp) & ((1 << ba) - 1)
    v = (v >> (hb + 1 - bs)) & ((1 << bs) - 1)
    if int(getattr(ds, 'PixelRepresentation', 0)):
        v = np.where(v >= (1 << (bs - 1)), v - (1 << bs), v)
    return v


def ybr_to_rgb(v, bits):
    """PS3.3 C.7.6.3.1.2 YBR_FULL -> RGB, as pixel.h documents."""
    half = float(1 << (bits - 1))
    mx = (1 << bits) - 1
    y, cb, cr = v[..., 0].astype(float), v[..., 1] - half, v[..., 2] - half
    out = np.stack([y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb], axis=-1)
    return np.clip(np.floor(out + 0.5), 0, mx).astype(np.int64)


def same_colour(a, a_pi, b, b_pi, bits):
    """medveil turns YBR_FULL_422 and lossy YBR JPEG into RGB and keeps YBR_FULL; dcmtk converts
    lossless YBR_FULL JPEG to RGB too. Where the two differ, the YBR side is converted (PS3.3
    C.7.6.3.1.2), and the comparison becomes a tolerant one (rounding differs)."""
    if a_pi == b_pi or a.shape[-1] != 3:
        return a, b, False
    if a_pi == 'RGB' and b_pi.startswith('YBR'):
        return a, ybr_to_rgb(b, bits), True
    if b_pi == 'RGB' and a_pi.startswith('YBR'):
        return ybr_to_rgb(a, bits), b, True
    return a, b, False


def compare(name, ours, theirs, lossy):
    if ours.shape != theirs.shape:
        return 'shape %s vs oracle %s' % (ours.shape, theirs.shape)
    diff = np.abs(ours - theirs)
    bad = np.argwhere(diff > (LOSSY_TOLERANCE if lossy else 0))
    if lossy and len(bad) <= LOSSY_SHARE * ours.size:
        return None
    if len(bad) == 0:
        return None
    first = tuple(int(i) for i in bad[0])
    return '%d of %d samples differ (max %d); first at %s: %d vs %d' % (
        len(bad), ours.size, int(diff.max()), first, int(ours[first]), int(theirs[first]))


def oracle_native(path, ts, out):
    tool = ORACLE.get(ts)
    if tool is None:
        return None
    if tool == 'gdcmconv':
        if not HAVE_GDCM:
            return None
        r = run(['gdcmconv', '--raw', path, out])
    else:
        r = run([tool, path, out])
    return out if r.returncode == 0 and os.path.exists(out) else None


QUICK = os.environ.get('MV_SANITIZE') == '1' or os.environ.get('MV_PIXEL_QUICK') == '1'
seen_layouts = {}


def sampled_out(ds, ts):
    """In QUICK mode, True for a native file whose layout two others already showed."""
    if not QUICK or ts not in NATIVE:
        return False
    key = (ts,) + tuple(str(getattr(ds, k, '')) for k in (
        'BitsAllocated', 'BitsStored', 'HighBit', 'PixelRepresentation', 'SamplesPerPixel',
        'PhotometricInterpretation', 'PlanarConfiguration')) + (str(getattr(ds, 'NumberOfFrames', 1)) != '1',)
    seen_layouts[key] = seen_layouts.get(key, 0) + 1
    return seen_layouts[key] > 2


def check_decode(path, tmp, label, corpus=False):
    try:
        ds = pydicom.dcmread(path, force=True, stop_before_pixels=True)
        ts = str(ds.file_meta.TransferSyntaxUID)
    except Exception:
        return
    if corpus and sampled_out(ds, ts):
        counts['sampled out'] = counts.get('sampled out', 0) + 1
        return
    full = pydicom.dcmread(path, force=True)
    if 'PixelData' not in full or 'Rows' not in full:
        return
    ours_path = os.path.join(tmp, 'ours.dcm')
    if os.path.exists(ours_path):
        os.unlink(ours_path)
    r = run([MEDVEIL, 'convert', '--decompress', '--no-sync', path, ours_path])
    if r.returncode >= 128 or r.returncode < 0 or sanitizer_report(r):
        fail(label, 'medveil crashed (status %d): %s' % (r.returncode, r.stderr.decode(errors='replace')[:300]))
        return
    if ts in NATIVE:
        oracle = path
    else:
        oracle = oracle_native(path, ts, os.path.join(tmp, 'oracle.dcm'))
    if r.returncode != 0:
        msg = r.stderr.decode(errors='replace').strip()
        if run([MEDVEIL, 'dump', path]).returncode != 0:
            # The DICOM reader refuses the file (its own tests cover that); no pixel question.
            print('%s: skipped (the reader refuses the file)' % label)
            counts['skipped'] += 1
        elif 'the attributes say' in msg:
            # A frame whose codestream contradicts Rows/Columns/Samples: medveil refuses it
            # (quarantine) where dcmtk decodes it into a buffer of the declared size anyway.
            print('%s: ok (refused as inconsistent: %s)' % (label, msg[-160:]))
            counts['passed'] += 1
        elif oracle is None or 'not supported' in msg or 'not decoded' in msg:
            print('%s: skipped (%s)' % (label, msg[:200]))
            counts['skipped'] += 1
        else:
            fail(label, 'medveil refused what the oracle decodes: %s' % msg[:300])
        return
    if oracle is None:
        print('%s: skipped (no oracle decodes %s)' % (label, ts))
        counts['skipped'] += 1
        return
    try:
        theirs, their_pi = samples(oracle)
        ours, our_pi = samples(ours_path)
    except Exception as e:
        print('%s: skipped (oracle output unreadable: %s)' % (label, e))
        counts['skipped'] += 1
        return
    bits = int(full.BitsStored) if 'BitsStored' in full else int(full.BitsAllocated)
    ours, theirs, converted = same_colour(ours, our_pi, theirs, their_pi, bits)
    lossy = ts in LOSSY or converted
    problem = compare(label, ours, theirs, lossy)
    if problem:
        fail(label, '%s (%s vs %s)' % (problem, ts, ORACLE.get(ts, 'raw')))
        return
    # pydicom as a second, independent oracle where its decoder is plain numpy (native, RLE).
    if ts in NATIVE or ts == RLE:
        theirs2 = pydicom_samples(full)
        if theirs2 is not None:
            a, b, conv = same_colour(ours, our_pi, theirs2, str(full.PhotometricInterpretation).strip(), bits)
            problem = compare(label, a, b, conv)
            if problem:
                fail(label, '%s (%s vs pydicom pixel_array)' % (problem, ts))
                return
            counts['pydicom agrees'] = counts.get('pydicom agrees', 0) + 1
    counts['passed'] += 1
    print('%s: ok (%s%s)' % (label, ts, ', lossy tolerance' if lossy else ''))


def sanitizer_report(r):
    """ASan and UBSan exit 1 like an ordinary refusal: look for their report."""
    err = r.stderr.decode(errors='replace')
    return 'Sanitizer' in err or 'runtime error:' in err


def fail(label, msg):
    counts['failed'] += 1
    failures.append(label)
    print('%s: FAIL %s' % (label, msg))


def make_native(path, arr, bits_stored, signed, photometric, planar=0, ts=ExplicitVRLittleEndian, palette=False):
    """arr: (frames, rows, cols, spp) of Python ints in range."""
    frames, rows, cols, spp = arr.shape
    ba = 8 if bits_stored <= 8 else 16 if bits_stored <= 16 else 32
    meta = FileMetaDataset()
    # Multi-frame images get a multi-frame SOP class (GDCM refuses a multi-frame Secondary Capture).
    meta.MediaStorageSOPClassUID = '1.2.840.10008.5.1.4.1.1.3.1' if frames > 1 else '1.2.840.10008.5.1.4.1.1.7'
    meta.MediaStorageSOPInstanceUID = '1.2.3.4.%d' % abs(hash(path) % 10**8)
    meta.TransferSyntaxUID = ts
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Rows, ds.Columns, ds.SamplesPerPixel = rows, cols, spp
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = ba, bits_stored, bits_stored - 1
    ds.PixelRepresentation = 1 if signed else 0
    ds.PhotometricInterpretation = photometric
    if spp > 1:
        ds.PlanarConfiguration = planar
    if frames > 1:
        ds.NumberOfFrames = frames
    if palette:
        lut = (np.arange(256) * 257).astype('<u2').tobytes()
        for c in ('Red', 'Green', 'Blue'):
            setattr(ds, '%sPaletteColorLookupTableDescriptor' % c, [256, 0, 16])
            setattr(ds, '%sPaletteColorLookupTableData' % c, lut)
    a = arr
    if planar:
        a = a.transpose(0, 3, 1, 2)
    dt = {8: 'u1', 16: 'u2', 32: 'u4'}[ba]
    big = ts == ExplicitVRBigEndian
    raw = (a.astype(np.int64) & ((1 << ba) - 1)).astype(('>' if big else '<') + dt).tobytes()
    ds.PixelData = raw
    ds['PixelData'].VR = 'OB' if ba == 8 else 'OW'
    ds.is_little_endian = not big
    ds.is_implicit_VR = ts == ImplicitVRLittleEndian
    ds.save_as(path, write_like_original=False)


def synthetic(tmp):
    """(label, native path) pairs covering the layouts pixel.h promises."""
    rng = np.random.default_rng(4)
    out = []

    def image(frames, rows, cols, spp, bits, signed):
        lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
        y, x = np.mgrid[0:rows, 0:cols]
        base = ((x * 7 + y * 3) % (hi - lo + 1)) + lo
        noise = rng.integers(lo, hi + 1, size=(frames, rows, cols, spp))
        a = np.where(rng.random((frames, rows, cols, spp)) < 0.3, noise, base[None, :, :, None])
        return a.astype(np.int64)

    cases = [
        ('mono8', image(1, 37, 41, 1, 8, False), 8, False, 'MONOCHROME2', 0, ExplicitVRLittleEndian),
        ('mono12', image(1, 64, 48, 1, 12, False), 12, False, 'MONOCHROME2', 0, ExplicitVRLittleEndian),
        ('mono16s', image(1, 33, 30, 1, 16, True), 16, True, 'MONOCHROME2', 0, ExplicitVRLittleEndian),
        ('mono12s', image(2, 20, 24, 1, 12, True), 12, True, 'MONOCHROME1', 0, ImplicitVRLittleEndian),
        ('mono16be', image(1, 16, 18, 1, 16, False), 16, False, 'MONOCHROME2', 0, ExplicitVRBigEndian),
        ('mono32', image(1, 9, 11, 1, 32, False) & 0xFFFFFFF, 28, False, 'MONOCHROME2', 0, ExplicitVRLittleEndian),
        ('rgb8', image(1, 30, 32, 3, 8, False), 8, False, 'RGB', 0, ExplicitVRLittleEndian),
        ('rgb8planar', image(3, 21, 22, 3, 8, False), 8, False, 'RGB', 1, ExplicitVRLittleEndian),
        ('ybrfull', image(1, 16, 16, 3, 8, False), 8, False, 'YBR_FULL', 0, ExplicitVRLittleEndian),
        ('palette', image(1, 12, 14, 1, 8, False), 8, False, 'PALETTE COLOR', 0, ExplicitVRLittleEndian),
        ('multi16', image(4, 17, 19, 1, 16, False), 16, False, 'MONOCHROME2', 0, ExplicitVRLittleEndian),
    ]
    for label, arr, bits, signed, pi, planar, ts in cases:
        path = os.path.join(tmp, label + '.dcm')
        make_native(path, arr, bits, signed, pi, planar, ts, palette=pi == 'PALETTE COLOR')
        out.append((label, path, bits, pi))
    # Native YBR_FULL_422: Y per pixel, Cb/Cr shared by each pair of columns.
    rows, cols = 8, 10
    a = image(1, rows, cols, 3, 8, False)
    a[..., 1::2, 1:] = a[..., 0::2, 1:]
    path = os.path.join(tmp, 'ybr422.dcm')
    make_native(path, a, 8, False, 'YBR_FULL_422')
    ds = pydicom.dcmread(path)
    flat = a.reshape(rows * cols // 2, 2, 3)
    ds.PixelData = np.stack([flat[:, 0, 0], flat[:, 1, 0], flat[:, 0, 1], flat[:, 0, 2]], axis=1).astype('u1').tobytes()
    ds.save_as(path)
    out.append(('ybr422', path, 8, 'YBR_FULL_422'))
    return out


def compressed_variants(tmp, label, path, bits, pi):
    """Compressed versions of a native file made by the oracles' own encoders."""
    v = []
    ds = pydicom.dcmread(path)
    native_le = os.path.join(tmp, label + '-le.dcm')
    run(['dcmconv', '+te', path, native_le])
    src = native_le if os.path.exists(native_le) else path
    if pi in ('YBR_FULL_422',):
        return v
    spp = int(ds.SamplesPerPixel)
    if bits <= 16:
        v.append(('rle', ['dcmcrle', src]))
        v.append(('jls', ['dcmcjpls', src]))
        if bits >= 2:
            v.append(('jls-near', ['dcmcjpls', '+en', '+md', '2', src]))
        v.append(('jpeg-sv1', ['dcmcjpeg', '+e1', src]))
        # Every predictor on two layouts (unsigned 12-bit, signed 16-bit); 6 elsewhere.
        for pred in range(2, 8) if label in ('mono12', 'mono16s') else (6,):
            v.append(('jpeg-p14-s%d' % pred, ['dcmcjpeg', '+el', '+sv', str(pred), src]))
        v.append(('jpeg-p14-pt2', ['dcmcjpeg', '+el', '+sv', '1', '+pt', '2', src]))
        if bits == 8 and pi in ('MONOCHROME2', 'RGB', 'YBR_FULL'):
            v.append(('jpeg-baseline', ['dcmcjpeg', '+eb', src]))
    out = []
    for name, cmd in v:
        dst = os.path.join(tmp, '%s-%s.dcm' % (label, name))
        r = run(cmd + [dst])
        if r.returncode == 0:
            out.append(('%s/%s' % (label, name), dst))
    if HAVE_OPJ and bits <= 16 and pi != 'PALETTE COLOR':
        out += j2k_variant(tmp, label, path, ds)
    return out


def j2k_variant(tmp, label, path, ds):
    """JPEG 2000 lossless codestreams from opj_compress, one per frame, wrapped with pydicom."""
    frames = int(getattr(ds, 'NumberOfFrames', 1) or 1)
    arr, _ = samples(path)
    spp = arr.shape[3]
    if int(ds.PixelRepresentation) or int(ds.BitsStored) not in (8, 16, 12):
        return []
    streams = []
    for f in range(frames):
        pgm = os.path.join(tmp, '%s-%d.%s' % (label, f, 'ppm' if spp == 3 else 'pgm'))
        mx = (1 << int(ds.BitsStored)) - 1
        with open(pgm, 'wb') as fh:
            fh.write(b'P%d\n%d %d\n%d\n' % (6 if spp == 3 else 5, arr.shape[2], arr.shape[1], mx))
            fh.write(arr[f].astype('>u2' if mx > 255 else 'u1').tobytes())
        j2k = pgm + '.j2k'
        r = run(['opj_compress', '-i', pgm, '-o', j2k])
        if r.returncode != 0:
            return []
        with open(j2k, 'rb') as fh:
            streams.append(fh.read())
    out = pydicom.dcmread(path)
    out.PixelData = encapsulate(streams)
    out['PixelData'].VR = 'OB'
    out['PixelData'].is_undefined_length = True
    out.file_meta.TransferSyntaxUID = J2K_LL
    out.is_little_endian, out.is_implicit_VR = True, False
    if spp == 3:
        out.PhotometricInterpretation = 'RGB'
        out.PlanarConfiguration = 0
    dst = os.path.join(tmp, label + '-j2k.dcm')
    out.save_as(dst)
    return [('%s/j2k' % label, dst)]


def check_encode(tmp, label, path):
    """medveil re-encodes a native image; an independent decoder must give back the samples."""
    want, pi = samples(path)
    for ts, decoder in ((RLE, 'dcmdrle'), (JPEG_SV1, 'dcmdjpeg'), (JLS, 'dcmdjpls'), (J2K_LL, 'gdcmconv')):
        if decoder == 'gdcmconv' and not HAVE_GDCM:
            continue
        enc = os.path.join(tmp, 'enc.dcm')
        back = os.path.join(tmp, 'back.dcm')
        for p in (enc, back):
            if os.path.exists(p):
                os.unlink(p)
        r = run([MEDVEIL, 'convert', '--no-sync', '-t', ts, path, enc])
        name = '%s -> %s' % (label, ts)
        if sanitizer_report(r):
            fail(name, 'sanitizer report: %s' % r.stderr.decode(errors='replace')[:300])
            continue
        if r.returncode != 0:
            msg = r.stderr.decode(errors='replace').strip()
            if 'holds' in msg or 'not supported' in msg:
                print('%s: skipped (%s)' % (name, msg[:160]))
                counts['skipped'] += 1
            else:
                fail(name, 'medveil could not encode: %s' % msg[:300])
            continue
        r = run(['gdcmconv', '--raw', enc, back] if decoder == 'gdcmconv' else [decoder, enc, back])
        if r.returncode != 0:
            fail(name, '%s cannot decode what medveil wrote: %s' % (decoder, r.stderr.decode(errors='replace')[:300]))
            continue
        got, got_pi = samples(back)
        got, want_c, converted = same_colour(got, got_pi, want, pi, 8)
        problem = compare(name, got, want_c, converted)
        if problem:
            fail(name, problem + ' (decoded by %s)' % decoder)
        else:
            counts['passed'] += 1
            print('%s: ok (decoded by %s)' % (name, decoder))


def main():
    tmp = tempfile.mkdtemp(prefix='mv-pixel-')
    try:
        for label, path, bits, pi in synthetic(tmp):
            check_decode(path, tmp, 'synthetic/' + label)
            for vlabel, vpath in compressed_variants(tmp, label, path, bits, pi):
                check_decode(vpath, tmp, 'synthetic/' + vlabel)
            if pi not in ('YBR_FULL_422',):
                check_encode(tmp, 'synthetic/' + label, path)
        corpus = os.environ.get('MV_CORPUS') or os.path.join(os.path.dirname(__file__), '..', '..', 'shared',
                                                               'corpus', 'dev')
        if os.path.isdir(corpus):
            for root, _, files in sorted(os.walk(corpus)):
                for f in sorted(files):
                    path = os.path.join(root, f)
                    try:
                        check_decode(path, tmp, os.path.relpath(path, corpus), corpus=True)
                    except subprocess.TimeoutExpired:
                        fail(os.path.relpath(path, corpus), 'timed out')
        else:
            print('SKIP: corpus part not run: %s is not a folder (set MV_CORPUS)' % corpus)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if counts.get('sampled out'):
        print('(quick mode: %d native corpus files of an already seen layout not run)' % counts['sampled out'])
    print('pydicom pixel_array agreed too on %d native/RLE images' % counts.get('pydicom agrees', 0))
    print('%d passed, %d failed, %d skipped' % (counts['passed'], counts['failed'], counts['skipped']))
    return 1 if counts['failed'] else 0


if __name__ == '__main__':
    sys.exit(main())
