#!/usr/bin/env bash
# Round trip over the corpus, with dcmtk as the oracle (issue: "Round trip").
#  1. `medveil convert` unchanged: dcmtk must parse the output to the same dataset as the
#     input; the output must be byte-identical when dcmtk reads the input without a single
#     warning (an already canonical file); a file medveil refuses leaves no output behind.
#  2. Uncompressed files converted to implicit VR LE, explicit VR BE and deflated, then back
#     to explicit VR LE: dcmtk must see the same public elements at every step.
set -u
MEDVEIL=${MEDVEIL:?MEDVEIL must name the medveil binary}
CORPUS=${MV_CORPUS:-$(dirname "$0")/../../shared/corpus/dev}
if [ ! -d "$CORPUS" ]; then
    echo "SKIPPED: corpus not found at $CORPUS (round trip against dcmtk not run)"
    exit 77
fi
if ! command -v dcmdump >/dev/null; then
    echo "SKIPPED: dcmdump (dcmtk) not installed"
    exit 77
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The dataset as dcmtk sees it: no meta, no comments, no length column, padding and
# sequence/item length style ignored (a rewrite may change defined to undefined lengths).
# With a second argument "short", long values are cut (faster; used for the conversion chain).
# DICOMDIR record offsets (0004,1200/1202/1400/1420) are byte positions, which a rewrite in
# another encoding must change: they are left out here and checked by pydicom in t_deid.
dataset() {
    local long=+L
    [ "${2:-}" = short ] && long=
    dcmdump -q $long "$1" 2>/dev/null | tr -d '\000' | tr -c '\n[:print:]' '.' |
        awk '/^# Dicom-Data-Set/{on=1;next} on && !/^#/ && NF' |
        sed -E 's/ +#.*$//; s/ +\]/]/g; s/\((Sequence|Item) with (explicit|undefined) length/(\1/;
                /ItemDelimitationItem|SequenceDelimitationItem/d; /^ *\([0-9a-f]{4},0000\)/d;
                /^ *\(0004,(1200|1202|1400|1420)\)/d;
                s/"Directory Record" [A-Z]+ #=([0-9]+)/(Item #=\1)/'
}
# Public elements only (private ones, and anything nested in them, read as UN in implicit
# VR), without the VR column (implicit VR files take VRs from the dictionary, where dcmtk
# shows ambiguous ones as xs/ox), and binary values as plain bytes (OW words are shown
# most significant byte first; OB pixel data turns OW in implicit VR, PS3.5 A.1).
public() {
    perl -ne '
        my ($ind, $g) = /^( *)\(([0-9a-f]{4}),/ or next;
        my $d = length $ind;
        if (defined $skip) { next if $d > $skip; undef $skip; }
        if (hex($g) % 2) { $skip = $d; next; }
        s/^( *\([0-9a-f,]+\)) [A-Za-z?]{2} /$1 /;
        # "US or SS" attributes of group 0028 read in implicit VR: dcmtk guesses US.
        s/(?<=[ \\])-(\d+)(?=\\|$)/65536 - $1/ge if /^ *\(0028,/;
        # Binary values as their first 16 bytes: OB shows bytes, OW little-endian words.
        if (/^( *\([0-9a-f,]+\)) ((?:[0-9a-f]{2}|[0-9a-f]{4})(?:\\(?:[0-9a-f]{2}|[0-9a-f]{4}))*)(?:\.\.\.)?$/) {
            my ($t, $v) = ($1, $2);
            my @b;
            for my $x (split /\\/, $v) { push @b, length($x) == 4 ? (substr($x, 2), substr($x, 0, 2)) : $x; }
            $#b = 15 if @b > 16;
            $_ = "$t " . join("\\", @b) . "\n";
        }
        print;'
}
# Elements whose VR dcmtk could not tell (shown as ??) are left out of the comparison: for
# them medveil takes the dictionary VR, which dcmtk does not.
unknown_vr_tags() { grep -E '^ *\([0-9a-f,]+\) \?\? ' | sed -E 's/^ *(\([0-9a-f,]+\)).*/\1/'; }
drop_tags() { if [ -n "$1" ]; then grep -vF -f <(echo "$1"); else cat; fi; }

passed=0 failed=0 identical=0 not_dcmtk=0 converted=0
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }

while IFS= read -r -d '' f; do
    out="$work/out.dcm"
    rm -f "$out"
    if ! dcmdump -q "$f" >/dev/null 2>&1; then
        not_dcmtk=$((not_dcmtk + 1))
        "$MEDVEIL" convert -n "$f" "$out" >/dev/null 2>"$work/err"
        rc=$?
        if [ $rc -ne 0 ] && { [ $rc -ne 1 ] || [ -e "$out" ] || [ ! -s "$work/err" ]; }; then
            fail "$f: refused with status $rc, output left=$([ -e "$out" ] && echo yes || echo no)"
            continue
        fi
        ls "$work" | grep -q mvtmp && { fail "$f: temporary file left behind"; continue; }
        passed=$((passed + 1))
        continue
    fi
    if ! "$MEDVEIL" convert -n "$f" "$out" 2>"$work/err"; then
        fail "$f: dcmtk reads it but medveil convert failed: $(head -c 300 "$work/err")"
        continue
    fi
    want=$(dataset "$f")
    unknown=$(echo "$want" | unknown_vr_tags)
    want=$(echo "$want" | drop_tags "$unknown")
    if [ "$want" != "$(dataset "$out" | drop_tags "$unknown")" ]; then
        fail "$f: dcmtk sees a different dataset after the rewrite"
        diff <(echo "$want") <(dataset "$out" | drop_tags "$unknown") | head -6 | cut -c1-160
        continue
    fi
    # Canonical: a preamble, the five Type 1 meta elements (PS3.10 7.1), and not one
    # warning from dcmtk. Such a file must come back byte for byte.
    meta_ok=$(dcmdump -q -M "$f" 2>/dev/null | grep -cE '^\(0002,000[123]\)|^\(0002,001[02]\)')
    if cmp -s "$f" "$out"; then
        identical=$((identical + 1))
    elif [ -z "$(dcmdump "$f" 2>&1 >/dev/null)" ] && [ "$(head -c 132 "$f" | tail -c 4)" = DICM ] &&
         [ "$meta_ok" = 5 ]; then
        fail "$f: canonical input (dcmtk reads it without warnings) was not rewritten byte for byte"
        cmp "$f" "$out" | head -2
        continue
    fi
    ts=$("$MEDVEIL" dump --no-meta "$f" 2>/dev/null | grep -m1 '^# Dataset:')
    case "$ts" in
    *"Implicit VR Little Endian"*|"# Dataset: Explicit VR Little Endian"*|*"Explicit VR Big Endian"*|*Deflated*) ;;
    *) passed=$((passed + 1)); continue ;;
    esac
    # Conversions between the uncompressed syntaxes keep every public element.
    pub=$(dataset "$f" short | drop_tags "$unknown" | public)
    ok=1
    prev="$out"
    for flag in -i -b -z -e; do
        next="$work/conv$flag.dcm"
        if ! "$MEDVEIL" convert -n $flag "$prev" "$next" 2>"$work/err"; then
            fail "$f: convert $flag failed: $(head -c 300 "$work/err")"
            ok=0
            break
        fi
        if [ "$pub" != "$(dataset "$next" short | drop_tags "$unknown" | public)" ]; then
            fail "$f: public elements differ after convert $flag"
            diff <(echo "$pub") <(dataset "$next" short | drop_tags "$unknown" | public) | head -6 | cut -c1-160
            ok=0
            break
        fi
        prev="$next"
    done
    [ $ok = 1 ] || continue
    converted=$((converted + 1))
    passed=$((passed + 1))
done < <(find "$CORPUS" -type f -print0 | sort -z)

echo "byte-identical rewrites: $identical; converted through 4 syntaxes: $converted; not read by dcmtk: $not_dcmtk"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
