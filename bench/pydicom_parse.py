#!/usr/bin/python3
"""Parse every DICOM file under the given folders with pydicom, touching every element.

Used by bench/run.sh as the pydicom peer of `medveil dump`. Each file is read with
dcmread(force=True); every element of the File Meta Information and of the data set,
including the items of sequences at any depth, is visited and its .value read, so
that pydicom's lazily converted raw elements are really decoded. A file that raises
is counted as failed and the walk goes on with the next file.

Usage: pydicom_parse.py [--report] PATH...
  --report  name each failed file on stderr (the benchmark's untimed check pass)
Exit status: 0 every file parsed, 1 some file failed, 2 usage error or no pydicom.
"""
import os
import sys
import warnings

try:
    import pydicom
except ImportError:
    sys.stderr.write("pydicom_parse.py: pydicom is not installed for %s\n" % sys.executable)
    sys.exit(2)


def walk(ds):
    n = 0
    for elem in ds.iterall():  # recursive: sequences' items included
        elem.value  # noqa: B018 - force the conversion of raw values
        n += 1
    return n


def files_under(paths):
    for p in paths:
        if os.path.isdir(p):
            for root, dirs, names in os.walk(p):
                dirs.sort()
                for name in sorted(names):
                    yield os.path.join(root, name)
        else:
            yield p


def main(argv):
    report = False
    if argv and argv[0] == "--report":
        report, argv = True, argv[1:]
    if not argv:
        sys.stderr.write(__doc__)
        return 2
    # pydicom warns about every non-conformant value (hundreds over a test corpus);
    # formatting those would be measured too, and they are not what is benchmarked.
    warnings.simplefilter("ignore")
    files = failed = elements = 0
    for path in files_under(argv):
        files += 1
        try:
            ds = pydicom.dcmread(path, force=True)
            elements += walk(ds.file_meta) if getattr(ds, "file_meta", None) is not None else 0
            elements += walk(ds)
        except Exception as exc:  # any failure of one file: count it, go on
            failed += 1
            if report:
                sys.stderr.write("%s: %s: %s\n" % (path, type(exc).__name__, str(exc)[:200]))
    if report:
        sys.stderr.write("pydicom %s: %d files, %d failed, %d elements\n"
                         % (pydicom.__version__, files, failed, elements))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
