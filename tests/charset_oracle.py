#!/usr/bin/python3
"""Derives the expected UTF-8 of tests/test_charset.c from pydicom, an independent decoder.

Run with Debian's interpreter (python3-pydicom): /usr/bin/python3 tests/charset_oracle.py
It prints the C table between the ORACLE BEGIN/END markers of tests/test_charset.c; paste
it there. With the path of that file as argument it instead checks that the table in it
is the one pydicom gives now (exit status 1 and a diff if not).

Input bytes come from pydicom's charset test files and test suite (which follow the
examples of PS3.5 Annexes H, I, J and K), from fo-dicom's chrGB2312.dcm (Annex K), or are
made with Python's own codecs. Nothing here runs medveil.
"""

import difflib
import os
import sys
import warnings

import pydicom
from pydicom import charset as pc
from pydicom.dataelem import DataElement_from_raw, RawDataElement
from pydicom.filereader import dcmread
from pydicom.multival import MultiValue
from pydicom.valuerep import PN_DELIMS, TEXT_VR_DELIMS

CHARSET_FILES = '/usr/lib/python3/dist-packages/pydicom/data/charset_files'
FO_DICOM_GB2312 = ('/work/shared/corpus/dev/github-fo-dicom/Tests/FO-DICOM.Tests/'
                   'Test Data/charset/chrGB2312.dcm')

TAGS = {'PN': 0x00100010, 'LO': 0x00101000, 'LT': 0x001021B0, 'SH': 0x00080050,
        'ST': 0x00080081, 'UT': 0x0040A160}


def raw_value(path, tag):
    """The undecoded bytes of tag in a file, without trailing padding."""
    ds = dcmread(path, force=True)
    return bytes(ds.get_item(tag).value).rstrip(b' \0')


def charset_file(name, tag=0x00100010):
    return raw_value(os.path.join(CHARSET_FILES, name), tag)


def decode_element(charset, vr, data):
    """pydicom's reading path: the value split into values, each decoded (PS3.5 6.1.2.5.3
    as pydicom does it). A PN is decoded as pydicom's PersonName does it, component by
    component, but without dropping empty trailing components, which PersonName does
    for display. Returns (text, warned about an unknown term)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        encodings = pc.convert_encodings(charset.split('\\'))
        if vr == 'PN':
            text = '\\'.join(
                '='.join(pc.decode_bytes(comp, encodings, PN_DELIMS)
                         for comp in value.split(b'='))
                for value in data.split(b'\\'))
        else:
            raw = RawDataElement(TAGS[vr], vr, len(data), data, 0, False, True)
            value = DataElement_from_raw(raw, encodings).value
            if isinstance(value, MultiValue):
                text = '\\'.join(str(v) for v in value)
            else:
                text = str(value)
    unknown = any('Unknown encoding' in str(w.message) for w in caught)
    return text, unknown


def decode_whole(encodings, delimiters, data):
    """pydicom's decode_bytes on the whole value, for values that pydicom's reading path
    would cut at a 05/12 or 03/13 byte inside a two-byte character."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return pc.decode_bytes(data, encodings, delimiters), False


def jis_kanji_with_byte(byte):
    """The first JIS X 0208 kanji whose two bytes include byte, as ISO 2022 bytes."""
    for cp in range(0x4E00, 0xA000):
        try:
            encoded = chr(cp).encode('iso2022_jp')
        except UnicodeEncodeError:
            continue
        core = encoded[3:-3]
        if len(core) == 2 and byte in core:
            return core
    raise LookupError(byte)


def gbk_with_second_byte(byte):
    for cp in range(0x4E00, 0xA000):
        try:
            encoded = chr(cp).encode('gbk')
        except UnicodeEncodeError:
            continue
        if len(encoded) == 2 and encoded[1] == byte:
            return encoded
    raise LookupError(byte)


def cases():
    out = []

    def element(name, charset, vr, data):
        text, unknown = decode_element(charset, vr, data)
        out.append((name, charset, vr, data, text, unknown))

    def whole(name, charset, vr, encodings, delimiters, data):
        text, unknown = decode_whole(encodings, delimiters, data)
        out.append((name, charset, vr, data, text, unknown))

    # Single-byte character sets without code extensions (PS3.3 Table C.12-2).
    element('ir100_french', 'ISO_IR 100', 'PN', charset_file('chrFren.dcm'))
    element('ir100_german', 'ISO_IR 100', 'PN', charset_file('chrGerm.dcm'))
    element('ir101', 'ISO_IR 101', 'PN', b'Wa\xb3\xeasa')
    element('ir109', 'ISO_IR 109', 'LO', b'anta\xfdnomo')
    element('ir110', 'ISO_IR 110', 'LO', b'v\xe0rds')
    element('ir144', 'ISO_IR 144', 'PN', charset_file('chrRuss.dcm'))
    element('ir127', 'ISO_IR 127', 'PN', charset_file('chrArab.dcm'))
    element('ir126', 'ISO_IR 126', 'PN', charset_file('chrGreek.dcm'))
    element('ir138', 'ISO_IR 138', 'PN', charset_file('chrHbrw.dcm'))
    element('ir148', 'ISO_IR 148', 'PN', b'\xc7avu\xfeo\xf0lu')
    # pydicom 2.3 has no ISO_IR 203 term: Python's iso8859_15 codec through decode_bytes.
    whole('ir203', 'ISO_IR 203', 'LO', ['iso8859_15'], TEXT_VR_DELIMS,
          b'\xa6koda \xa4 \xbc\xbd\xbe')
    element('ir13', 'ISO_IR 13', 'PN', b'\xd4\xcf\xc0\xde^\xc0\xdb\xb3')
    element('ir166', 'ISO_IR 166', 'LO', b'\xb9\xd2\xc1\xca\xa1\xd8\xc5')
    # Stand-alone sets (PS3.3 Table C.12-5); chrX1 and chrX2 are PS3.5 Annex J.
    element('ir192', 'ISO_IR 192', 'PN', charset_file('chrX1.dcm'))
    element('ir192_multi', 'ISO_IR 192', 'LO', 'Jérôme\\Ελλάδα\\😀'.encode('utf-8'))
    element('gb18030', 'GB18030', 'PN', charset_file('chrX2.dcm'))
    element('gb18030_four_byte', 'GB18030', 'LO', 'café 😀 ǹ'.encode('gb18030'))
    # A GBK second byte of 05/12: the whole value is one character string.
    whole('gbk_backslash_trail', 'GBK', 'LT', ['gbk'], TEXT_VR_DELIMS,
          '王小东'.encode('gbk') + gbk_with_second_byte(0x5C) + b'\\x')
    element('gbk', 'GBK', 'PN', 'Wang^XiaoDong=王^小东='.encode('gbk'))

    # Code extensions, multi-byte (PS3.5 Annexes H, I, K).
    element('h31_japanese', '\\ISO 2022 IR 87', 'PN', charset_file('chrH31.dcm'))
    element('h32_japanese', 'ISO 2022 IR 13\\ISO 2022 IR 87', 'PN',
            charset_file('chrH32.dcm'))
    element('i2_korean', '\\ISO 2022 IR 149', 'PN', charset_file('chrI2.dcm'))
    element('korean_lt', '\\ISO 2022 IR 149', 'LT',
            charset_file('chrKoreanMulti.dcm', 0x001021B0))
    # PS3.5 Annex K.2. pydicom 2.3 hands the whole fragment, escape sequence included,
    # to Python's gb2312 codec and so keeps ESC $ ) A in its output; the expected text is
    # instead the G1 bytes through Python's gb2312 codec with the designations removed,
    # which is the text of the standard's example, "Zhang^XiaoDong=张^小东=".
    ir58 = raw_value(FO_DICOM_GB2312, 0x00100010)
    out.append(('k_chinese_ir58', '\\ISO 2022 IR 58', 'PN', ir58,
                ir58.replace(b'\x1b$)A', b'').decode('gb2312'), False))
    # JIS X 0212 (ISO-IR 159), from pydicom's test_japanese_multi_byte_personname.
    element('jisx0212', 'ISO 2022 IR 6\\ISO 2022 IR 87\\ISO 2022 IR 159', 'PN',
            b'\x4d\x6f\x72\x69\x5e\x4f\x67\x61\x69\x3d\x1b\x24\x42\x3f'
            b'\x39\x1b\x28\x42\x5e\x1b\x24\x28\x44\x6c\x3f\x1b\x24\x42'
            b'\x33\x30\x1b\x28\x42\x3d\x1b\x24\x42\x24\x62\x24\x6a\x1b'
            b'\x28\x42\x5e\x1b\x24\x42\x24\x2a\x24\x26\x24\x2c\x24\x24'
            b'\x1b\x28\x42')
    element('japanese_multi_pn', '\\ISO 2022 IR 87', 'PN',
            charset_file('chrJapMulti.dcm', 0x00101001))
    element('japanese_multi_lo', '\\ISO 2022 IR 87', 'LO',
            b'\x1b$B;3ED\x1b(B\\\x1b$BB@O:\x1b(B')
    # 05/12, 05/14 and 03/13 as bytes of JIS X 0208 characters are no delimiters.
    kanji = (jis_kanji_with_byte(0x5C) + jis_kanji_with_byte(0x5E)
             + jis_kanji_with_byte(0x3D))
    whole('jisx0208_delimiter_bytes_lo', '\\ISO 2022 IR 87', 'LO',
          pc.convert_encodings(['', 'ISO 2022 IR 87']), TEXT_VR_DELIMS,
          b'A\x1b$B' + kanji + b'\x1b(B\\B')
    whole('jisx0208_delimiter_bytes_pn', '\\ISO 2022 IR 87', 'PN',
          pc.convert_encodings(['', 'ISO 2022 IR 87']), PN_DELIMS,
          b'\x1b$B' + kanji + b'\x1b(B^X')

    # Single-byte code extensions (PS3.3 Table C.12-3), from pydicom's ENCODED_NAMES.
    for term, data in [
            ('ISO 2022 IR 13', b'\x1b)I\xd4\xcf\xc0\xde^\x1b)I\xc0\xdb\xb3'),
            ('ISO 2022 IR 100', b'\x1b-ABuc^\x1b-AJ\xe9r\xf4me'),
            ('ISO 2022 IR 101', b'\x1b-BWa\xb3\xeasa'),
            ('ISO 2022 IR 109', b'\x1b-Canta\xfdnomo'),
            ('ISO 2022 IR 110', b'\x1b-Dv\xe0rds'),
            ('ISO 2022 IR 127', b'\x1b-G\xe2\xc8\xc7\xe6\xea^\x1b-G\xe4\xe6\xd2\xc7\xd1'),
            ('ISO 2022 IR 126', b'\x1b-F\xc4\xe9\xef\xed\xf5\xf3\xe9\xef\xf2'),
            ('ISO 2022 IR 138', b'\x1b-H\xf9\xf8\xe5\xef^\x1b-H\xe3\xe1\xe5\xf8\xe4'),
            ('ISO 2022 IR 144', b'\x1b-L\xbb\xee\xdace\xdc\xd1yp\xd3'),
            ('ISO 2022 IR 148', b'\x1b-M\xc7avu\xfeo\xf0lu'),
            ('ISO 2022 IR 166', b'\x1b-T\xb9\xd2\xc1\xca\xa1\xd8\xc5')]:
        name = 'ext_' + term.split()[-1]
        element(name, '\\' + term, 'PN', b'ASCII+' + data)
    # pydicom 2.3 knows no ISO 2022 IR 203: the part after ESC 02/13 06/02 (PS3.3
    # Table C.12-3) through Python's iso8859_15 codec.
    out.append(('ext_203', 'ISO 2022 IR 6\\ISO 2022 IR 203', 'LO', b'Prix \x1b-b\xa4\xbc',
                'Prix ' + b'\xa4\xbc'.decode('iso8859_15'), False))

    # Return to the initial sets (PS3.5 6.1.2.5.3): G1 is Latin-1 by value 1, Cyrillic
    # after ESC - L; a delimiter brings Latin-1 back, 0xE9 is then e-acute, not Cyrillic.
    ext = 'ISO 2022 IR 100\\ISO 2022 IR 144'
    element('reset_at_backslash_lo', ext, 'LO', b'\x1b-L\xbb\xee\\\xe9')
    element('no_reset_at_backslash_lt', ext, 'LT', b'\x1b-L\xbb\\\xee')
    element('reset_at_caret_pn', ext, 'PN', b'\x1b-L\xbb\xee^\xe9')
    element('reset_at_equals_pn', ext, 'PN', b'\x1b-L\xbb\xee=\xe9')
    element('reset_at_crlf_lt', ext, 'LT', b'\x1b-L\xbb\xee\r\n\xe9')
    element('reset_at_tab_lt', ext, 'LT', b'\x1b-L\xbb\xee\t\xe9')
    element('reset_at_ff_lt', ext, 'LT', b'\x1b-L\xbb\xee\x0c\xe9')
    element('no_reset_at_caret_lo', ext, 'LO', b'\x1b-L\xbb^\xee')

    # Bytes that cannot be decoded: U+FFFD, one per maximal ill-formed subpart in UTF-8.
    element('utf8_invalid', 'ISO_IR 192', 'LO', b'A\xffB\xe5\xb0C\xed\xa0\x80D')
    element('ir109_undefined', 'ISO_IR 109', 'LO', b'x\xa5y')
    element('gb18030_invalid', 'GB18030', 'LO', b'A\xffB\x810\x81B')
    element('gb18030_truncated', 'GB18030', 'LO', b'A\xffB\x810')
    # 02/09 02/01 is not a JIS X 0208 character. pydicom would give up on the fragment
    # and read it as Latin-1; Python's own iso2022_jp codec with 'replace' is the oracle.
    jis = b'\x1b$B)!;3\x1b(B'
    out.append(('jisx0208_unassigned', '\\ISO 2022 IR 87', 'LO', jis,
                jis.decode('iso2022_jp', 'replace'), False))
    # An unknown term: default repertoire, other bytes as ISO 8859-1.
    element('unknown_term', 'ISO_IR 999', 'PN', charset_file('chrFren.dcm'))
    # Misspelt terms pydicom corrects (Cyrillic, so a Latin-1 fallback would show).
    for index, spelling in enumerate(['ISO IR 144', 'ISO-IR 144', 'ISO_IR_144',
                                      'ISO 2022-IR 144', 'iso_ir 144']):
        element('spelling_%d' % index, spelling, 'PN', charset_file('chrRuss.dcm'))
    return out


def c_literal(parts, width=72):
    """Adjacent C string literals of at most about width characters, never cutting an
    escape (octal escapes have 3 digits, so no digit can run into one)."""
    lines, line = [], ''
    for part in parts:
        if len(line) + len(part) > width:
            lines.append(line)
            line = ''
        line += part
    lines.append(line)
    return '\n      '.join('"%s"' % line for line in lines)


def c_bytes(data):
    return c_literal([chr(b) if 0x20 <= b < 0x7F and b not in b'"\\?' else '\\%03o' % b
                      for b in data])


def c_text(text):
    return c_literal([''.join('\\%03o' % b for b in ch.encode('utf-8'))
                      if ch in '"\\?' or ord(ch) < 0x20 or ord(ch) == 0x7F else ch
                      for ch in text])


def table():
    lines = ['/* ORACLE BEGIN: generated by tests/charset_oracle.py with pydicom %s */'
             % pydicom.__version__]
    for name, charset, vr, data, text, unknown in cases():
        lossy = int('\ufffd' in text or (unknown and any(b >= 0x80 for b in data)))
        lines.append('    { %s, %s, MV_VR_%s,' % (c_text(name), c_text(charset), vr))
        lines.append('      %s, %d,' % (c_bytes(data), len(data)))
        lines.append('      %s, %d },' % (c_text(text), lossy))
    lines.append('/* ORACLE END */')
    return '\n'.join(lines) + '\n'


def main(argv):
    generated = table()
    if len(argv) < 2:
        sys.stdout.write(generated)
        return 0
    with open(argv[1], encoding='utf-8') as f:
        source = f.read()
    begin = source.index('/* ORACLE BEGIN')
    end = source.index('/* ORACLE END */') + len('/* ORACLE END */\n')
    if source[begin:end] == generated:
        print('%s: table matches pydicom %s' % (argv[1], pydicom.__version__))
        return 0
    sys.stdout.writelines(difflib.unified_diff(
        source[begin:end].splitlines(True), generated.splitlines(True),
        argv[1], 'pydicom'))
    return 1


if __name__ == '__main__':
    sys.exit(main(sys.argv))
