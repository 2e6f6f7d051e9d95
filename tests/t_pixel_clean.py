#!/usr/bin/python3
"""Burned-in text cleaning (`deid --option clean-pixel-data`, docs/pixel-clean.md), checked
with oracles that are not medveil: pixels are rendered by dcmtk's dcmj2pnm (or pydicom +
PIL when dcmtk cannot), enlarged by PIL, and read by the tesseract command-line program;
pixel values are compared with pydicom's decoding.

1. Corpus: the four github-presidio images and the github-fo-dicom images whose Burned In
   Annotation is YES are de-identified; in every released output the oracle reads none of
   the header's name parts or IDs; every released output says Burned In Annotation NO and
   carries code 113101; a file not released has a .reason.
2. Synthetic: a name, an ID and a birth date are drawn with PIL into a corpus CT written
   with pydicom (header set to match, Burned In Annotation YES). The oracle reads them in
   the input (so the check can fail) and not in the output; every pixel outside the masks
   listed in the review page is bit-identical; with deliberately broken masks
   (MEDVEIL_TEST_BROKEN_MASKS) the verification sends the file to quarantine.
3. A file that needs no pixel change is not decoded: damaged pixel data in an original CT
   with Burned In Annotation NO is released untouched.
4. clean-recognizable-visual-features quarantines a head CT; rules errors name file and
   line; preview writes a PNG (mode 0600) of the right size.

Exit 77 (skipped, loudly) without MEDVEIL, the corpus, pydicom, PIL or tesseract."""
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile

MEDVEIL = os.environ.get('MEDVEIL')
SRC = os.environ.get('MV_SOURCE_DIR', os.path.join(os.path.dirname(__file__), '..'))
CORPUS = os.environ.get('MV_CORPUS') or os.path.join(SRC, '..', 'shared', 'corpus', 'dev')

failures = []


def skip(why):
    print('SKIP: t_pixel_clean: ' + why, flush=True)
    sys.exit(77)


def check(name, ok, detail=''):
    print(('ok   ' if ok else 'FAIL ') + name + ((': ' + detail) if detail and not ok else ''), flush=True)
    if not ok:
        failures.append(name)


if not MEDVEIL or not os.access(MEDVEIL, os.X_OK):
    skip('MEDVEIL is not set')
if not os.path.isdir(CORPUS):
    skip('corpus %s is absent: no pixel cleaning case ran' % CORPUS)
try:
    import numpy as np
    import pydicom
    from PIL import Image, ImageDraw, ImageFont
except ImportError as e:
    skip('needs pydicom, numpy and PIL (%s)' % e)
if shutil.which('tesseract') is None:
    skip('the tesseract program (the OCR oracle) is not installed')

work = tempfile.mkdtemp(prefix='mv_pixel_')


def run(args, env=None, timeout=300):
    e = dict(os.environ)
    if env:
        e.update(env)
    p = subprocess.run([MEDVEIL] + args, capture_output=True, text=True, timeout=timeout, env=e)
    return p.returncode, p.stdout, p.stderr


def canon(text):
    """Lower case, letters and digits only, with the usual OCR confusions folded."""
    table = str.maketrans('oilszb|', '0115281')
    return re.sub(r'[^0-9a-z]', '', text.lower()).translate(table)


def oracle_text(path, n_frames=1):
    return '\n'.join(oracle_frame(path, f) for f in range(1, n_frames + 1))


def oracle_frame(path, frame):
    """What tesseract reads in a rendering of path made by dcmtk (else pydicom + PIL),
    enlarged to about 1500-2200 pixels a side: as rendered and only its brightest levels (text is
    usually drawn at the top of the range; tesseract misses it on a busy background)."""
    png = os.path.join(work, 'oracle.png')
    img = None
    if shutil.which('dcmj2pnm'):
        r = subprocess.run(['dcmj2pnm', '+on', '+Wm', '+F', str(frame), '--write-png', path, png],
                           capture_output=True)
        if r.returncode == 0:
            img = Image.open(png).convert('L')
    if img is None:
        ds = pydicom.dcmread(path)
        a = ds.pixel_array.astype(np.float64)
        if a.ndim == 3 and a.shape[-1] == 3:
            a = a.mean(axis=2)
        elif a.ndim == 3:
            a = a[frame - 1]
        lo, hi = a.min(), a.max()
        a = (a - lo) * (255.0 / (hi - lo if hi > lo else 1))
        img = Image.fromarray(a.astype(np.uint8))
    side = max(img.width, img.height)
    scale = 3 if side <= 800 else 2 if side <= 1400 else 1
    img = img.resize((img.width * scale, img.height * scale), Image.BILINEAR)
    text = ''
    for variant in (img, img.point(lambda v: 0 if v >= 245 else 255)):
        variant.save(png)
        r = subprocess.run(['tesseract', png, '-', '--psm', '11'], capture_output=True, text=True)
        text += r.stdout + '\n'
    return text


def identifiers(ds):
    """Header values that must not be readable: name parts and IDs of 3+ characters."""
    out = set()
    name = str(ds.get('PatientName', '') or '')
    for part in re.split(r'[\^= ,.]+', name):
        if len(canon(part)) >= 3:
            out.add(canon(part))
    for kw in ('PatientID', 'AccessionNumber'):
        v = str(ds.get(kw, '') or '')
        if len(canon(v)) >= 3:
            out.add(canon(v))
    return out


def readable(ids, text):
    c = canon(text)
    return sorted(i for i in ids if i in c)


def method_codes(ds):
    return [str(it.get('CodeValue', '')) for it in ds.get('DeidentificationMethodCodeSequence', [])]


# ---- 1. corpus ----------------------------------------------------------------------------
def corpus_files():
    files = []
    pres = os.path.join(CORPUS, 'github-presidio')
    for root, _, names in os.walk(pres):
        files += [os.path.join(root, n) for n in sorted(names) if n.endswith('.dcm')]
    fo = os.path.join(CORPUS, 'github-fo-dicom')
    for root, _, names in os.walk(fo):
        for n in sorted(names):
            p = os.path.join(root, n)
            try:
                ds = pydicom.dcmread(p, stop_before_pixels=True, force=True)
            except Exception:
                continue
            if str(ds.get('BurnedInAnnotation', '')).strip().upper() == 'YES':
                files.append(p)
    return files


files = corpus_files()
check('corpus: found presidio and fo-dicom Burned In Annotation YES images', len(files) >= 5, str(files))
inp = os.path.join(work, 'corpus-in')
os.makedirs(inp)
originals = {}
for i, p in enumerate(files):
    name = '%02d_%s' % (i, os.path.basename(p))
    shutil.copy(p, os.path.join(inp, name))
    originals[name] = p
out = os.path.join(work, 'corpus-out')
rc, _, err = run(['deid', '--quiet', '-j', '2', '--option', 'clean-pixel-data', '--review',
                  os.path.join(work, 'corpus-review.html'), '--report', os.path.join(work, 'corpus.json'), inp,
                  '-o', out])
check('corpus: deid ran (exit 0 or 1)', rc in (0, 1), err[-2000:])
try:
    import json
    rep = json.load(open(os.path.join(work, 'corpus.json')))
    px = [f.get('pixel') for f in rep['files'] if f['status'] == 'deidentified']
    check('corpus: the JSON report says for every released file whether its pixels were read, and why',
          bool(px) and all(p is not None and p['decision'] and 'read' in p for p in px), str(px)[:500])
except (OSError, ValueError, KeyError) as e:
    check('corpus: the JSON report is readable', False, str(e))
released = quarantined = 0
for name, src in sorted(originals.items()):
    try:
        ids = identifiers(pydicom.dcmread(src, stop_before_pixels=True, force=True))
    except Exception:
        ids = set()
    o = os.path.join(out, 'corpus-in', name)
    q = os.path.join(out + '-quarantine', 'corpus-in', name)
    if os.path.exists(o):
        released += 1
        ds = pydicom.dcmread(o, force=True)
        if 'PixelData' in ds:
            before = readable(ids, oracle_text(src)) if ids else []
            after = readable(ids, oracle_text(o)) if ids else []
            print('     %s: identifiers readable before %d, after %d' % (name, len(before), len(after)))
            check('corpus: no header identifier readable in the output of ' + name, not after,
                  '%d still readable' % len(after))
            check('corpus: Burned In Annotation is NO in ' + name,
                  str(ds.get('BurnedInAnnotation', '')) == 'NO')
            check('corpus: 113101 in the method codes of ' + name, '113101' in method_codes(ds))
    else:
        quarantined += 1
        check('corpus: %s not released has a quarantine reason' % name, os.path.exists(q + '.reason'))
        if os.path.exists(q + '.reason'):
            print('     %s quarantined: %s' % (name, open(q + '.reason').read().strip()))
print('     corpus: %d released, %d quarantined' % (released, quarantined))

# ---- 2. synthetic name in a corpus image ---------------------------------------------------
ct_src = os.path.join(CORPUS, 'github-fo-dicom', 'Tests', 'FO-DICOM.Benchmark', 'Data', 'ct.dcm')
rgb_src = os.path.join(CORPUS, 'github-presidio', 'presidio-image-redactor', 'tests', 'test_data', 'RGB_ORIGINAL.dcm')
SYN_IDS = {canon(i) for i in ('quartermaine', 'zygmunt', '8675309123')}


def text_layer(width):
    """A boolean mask of three lines of identifiers drawn with PIL (90 rows x width)."""
    canvas = Image.new('L', (width, 90), 0)
    draw = ImageDraw.Draw(canvas)
    font = None
    for f in ('/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf',
              '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf'):
        if os.path.exists(f):
            font = ImageFont.truetype(f, 18)
            break
    lines = ['QUARTERMAINE ZYGMUNT', 'ID 8675309123', 'DOB 14/03/1961']
    if font is not None:
        for k, line in enumerate(lines):
            draw.text((8, 4 + 28 * k), line, fill=255, font=font)
    else:
        small = Image.new('L', (width // 2, 45), 0)
        d2 = ImageDraw.Draw(small)
        for k, line in enumerate(lines):
            d2.text((4, 2 + 14 * k), line, fill=255)
        canvas = small.resize((small.width * 2, small.height * 2), Image.NEAREST)
    return np.array(canvas) > 127


def make_synthetic(kind, path):
    """Writes (pydicom) a corpus image with the identifiers drawn in: 'ct' a 16-bit signed CT,
    'rgb' an RGB secondary capture with yellow text, 'frames' three 8-bit frames of the CT."""
    if kind == 'rgb':
        ds = pydicom.dcmread(rgb_src)
        arr = ds.pixel_array.copy()
        t = text_layer(arr.shape[1])
        arr[:t.shape[0], :t.shape[1]][t] = (255, 220, 0)
        ds.PlanarConfiguration = 0
    else:
        ds = pydicom.dcmread(ct_src)
        arr = ds.pixel_array.copy()
        t = text_layer(arr.shape[1])
        if kind == 'ct':
            arr[:t.shape[0], :t.shape[1]][t] = int(arr.max())
        else:
            a = arr.astype(np.float64)
            a = ((a - a.min()) * (200.0 / max(1.0, a.max() - a.min()))).astype(np.uint8)
            frames = np.stack([np.roll(a, 7 * k, axis=1) for k in range(3)])
            frames[:, :t.shape[0], :t.shape[1]][:, t] = 255
            arr = frames
            ds.NumberOfFrames = 3
            ds.BitsAllocated = ds.BitsStored = 8
            ds.HighBit = 7
            ds.PixelRepresentation = 0
            for kw in ('RescaleIntercept', 'RescaleSlope', 'WindowCenter', 'WindowWidth', 'SmallestImagePixelValue',
                       'LargestImagePixelValue'):
                if kw in ds:
                    delattr(ds, kw)
    ds.PixelData = arr.tobytes()
    ds.PatientName = 'QUARTERMAINE^ZYGMUNT'
    ds.PatientID = '8675309123'
    ds.PatientBirthDate = '19610314'
    ds.BurnedInAnnotation = 'YES'
    ds.save_as(path, write_like_original=False)


def synthetic_case(kind):
    src = rgb_src if kind == 'rgb' else ct_src
    if not os.path.exists(src):
        check('synthetic %s: the corpus image is present' % kind, False, src)
        return None
    syn_in = os.path.join(work, 'syn-%s' % kind)
    os.makedirs(syn_in)
    syn = os.path.join(syn_in, 'synthetic.dcm')
    make_synthetic(kind, syn)
    n_frames = 3 if kind == 'frames' else 1
    seen = readable(SYN_IDS, oracle_text(syn))
    check('synthetic %s: the oracle reads the drawn identifiers in the input' % kind, len(seen) >= 2, str(seen))
    review = os.path.join(work, 'syn-%s-review.html' % kind)
    syn_out = os.path.join(work, 'syn-%s-out' % kind)
    rc, _, err = run(['deid', '--quiet', '--option', 'clean-pixel-data', '--review', review, syn_in, '-o', syn_out])
    o = os.path.join(syn_out, os.path.basename(syn_in), 'synthetic.dcm')
    check('synthetic %s: released (exit 0)' % kind, rc == 0 and os.path.exists(o), err[-1500:])
    if not os.path.exists(o):
        return syn
    left = readable(SYN_IDS, oracle_text(o, n_frames))
    check('synthetic %s: no drawn identifier readable after cleaning (every frame)' % kind, not left, str(left))
    out_ds = pydicom.dcmread(o)
    check('synthetic %s: Burned In Annotation NO' % kind, str(out_ds.get('BurnedInAnnotation', '')) == 'NO')
    check('synthetic %s: 113101 in the method codes' % kind, '113101' in method_codes(out_ds))
    after, before = out_ds.pixel_array, pydicom.dcmread(syn).pixel_array
    check('synthetic %s: same shape and type after cleaning' % kind,
          after.shape == before.shape and after.dtype == before.dtype, '%s %s' % (after.shape, before.shape))
    if after.shape != before.shape:
        return syn
    changed = after != before
    if kind == 'rgb':
        changed = changed.any(axis=2)
    per_frame = changed if kind == 'frames' else changed[np.newaxis]
    html = open(review).read()
    boxes = [tuple(map(int, m)) for m in
             re.findall(r'<tr><td>(\d+),(\d+) (\d+)&times;(\d+)</td><td>[^<]*</td><td>[^<]*</td><td>[^<]*</td>'
                        r'<td>yes</td>', html)]
    allowed = np.zeros(per_frame.shape[1:], dtype=bool)
    for x, y, w, h in boxes:
        m = 4 + h // 5 + 1  # the margin of docs/pixel-clean.md, plus rounding
        allowed[max(0, y - m):y + h + m, max(0, x - m):x + w + m] = True
    check('synthetic %s: the review lists masked boxes' % kind, len(boxes) >= 2, str(len(boxes)))
    check('synthetic %s: pixels were masked on every frame' % kind, all(f.any() for f in per_frame))
    outside = int(sum((f & ~allowed).sum() for f in per_frame))
    check('synthetic %s: every pixel outside the masks is bit-identical' % kind, outside == 0,
          '%d pixels changed outside' % outside)
    if kind == 'rgb':
        masked = after[per_frame[0]]
        check('synthetic rgb: masks are black', bool((masked == 0).all()))
    check('synthetic %s: review page is mode 0600' % kind, stat.S_IMODE(os.stat(review).st_mode) == 0o600)
    check('synthetic %s: review page says it holds identifiers' % kind,
          'REVIEWER-ONLY' in html and 'data:image/png;base64,' in html)
    return syn


syn = synthetic_case('ct')
synthetic_case('rgb')
synthetic_case('frames')
if syn is not None:
    syn_in = os.path.dirname(syn)
    rc, _, err = run(['deid', '--quiet', '--option', 'clean-pixel-data', syn_in, '-o',
                      os.path.join(work, 'broken-out')], env={'MEDVEIL_TEST_BROKEN_MASKS': '1'})
    reason = os.path.join(work, 'broken-out-quarantine', 'syn-ct', 'synthetic.dcm.reason')
    check('synthetic: broken masks are caught by the verification (exit 1, quarantined)',
          rc == 1 and os.path.exists(reason) and 'still readable' in open(reason).read(), err[-800:])
    check('synthetic: nothing released with broken masks',
          not os.path.exists(os.path.join(work, 'broken-out', 'syn-ct', 'synthetic.dcm')))
if os.path.exists(ct_src):
    # ---- 3. not decoded when nothing needs it ------------------------------------------------
    ds = pydicom.dcmread(ct_src)
    ds.BurnedInAnnotation = 'NO'
    ds.PixelData = ds.PixelData[:len(ds.PixelData) // 2]  # undecodable on purpose
    nd_in = os.path.join(work, 'nd-in')
    os.makedirs(nd_in)
    ds.save_as(os.path.join(nd_in, 'original.dcm'), write_like_original=False)
    rc, _, err = run(['deid', '--quiet', '--option', 'clean-pixel-data', nd_in, '-o', os.path.join(work, 'nd-out')])
    check('header-only: an original CT with Burned In Annotation NO is not decoded (released)',
          rc == 0 and os.path.exists(os.path.join(work, 'nd-out', 'nd-in', 'original.dcm')), err[-800:])

    # ---- 4. visual features -----------------------------------------------------------------
    ds = pydicom.dcmread(ct_src)
    ds.BodyPartExamined = 'HEAD'
    vf_in = os.path.join(work, 'vf-in')
    os.makedirs(vf_in)
    ds.save_as(os.path.join(vf_in, 'head.dcm'), write_like_original=False)
    rc, _, err = run(['deid', '--quiet', '--option', 'clean-recognizable-visual-features', vf_in, '-o',
                      os.path.join(work, 'vf-out')])
    reason = os.path.join(work, 'vf-out-quarantine', 'vf-in', 'head.dcm.reason')
    check('visual features: a head CT is quarantined with the reason',
          rc == 1 and os.path.exists(reason) and 'recognizable visual features' in open(reason).read(), err[-800:])

    # ---- preview ----------------------------------------------------------------------------
    png = os.path.join(work, 'p.png')
    rc, _, err = run(['preview', syn, '-o', png, '--boxes', '--window', '40,400'])
    ok = rc == 0 and os.path.exists(png)
    check('preview: writes a PNG', ok, err[-500:])
    if ok:
        im = Image.open(png)
        check('preview: PNG has the image size', im.size == (ds.Columns, ds.Rows), str(im.size))
        check('preview: PNG is mode 0600', stat.S_IMODE(os.stat(png).st_mode) == 0o600)
        check('preview: --boxes lists the identifiers found', 'patient name' in err)
    rc, _, err = run(['preview', syn, '-o', png, '--frame', '2'])
    check('preview: a missing frame is exit 1', rc == 1, err)
    rc, _, err = run(['preview', syn, '-o', png, '--window', 'abc'])
    check('preview: a bad --window is exit 2', rc == 2, err)

# ---- rules errors ----------------------------------------------------------------------------
bad = os.path.join(work, 'bad.rules')
with open(bad, 'w') as f:
    f.write('medveil-pixel-rules 1\nrule "x"\n  when Modality = US\n  mask 1 2 3\nend\n')
rc, _, err = run(['deid', '--option', 'clean-pixel-data', '--pixel-rules', bad, work, '-o', os.path.join(work, 'r')])
check('rules: a malformed rules file is exit 2 naming file and line', rc == 2 and (bad + ':4:') in err, err)

shutil.rmtree(work, ignore_errors=True)
print('%d checks failed' % len(failures))
sys.exit(1 if failures else 0)
