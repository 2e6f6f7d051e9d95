#!/usr/bin/env bash
# Replays tests/regress/ (fuzzer crash reproducers and the hand-made malformed seed-* files of
# make_seeds.py) through tests/regress_runner.c: parse, dump, JSON, write back, convert, read
# again. Then does the same over the corpus ($MV_CORPUS), if there is one. A file the reader
# refuses cleanly passes; a crash, a sanitizer report or an output that does not read back fails.
set -u
if [ -z "${REGRESS_RUNNER:-}" ]; then
    echo "SKIPPED: REGRESS_RUNNER is not set (tests/regress_runner.c not built)"
    exit 77
fi
SRC=${MV_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
export MV_SOURCE_DIR=$SRC
status=0

echo "== regress_runner $SRC/tests/regress"
"$REGRESS_RUNNER" "$SRC/tests/regress" || status=1

if [ -n "${MV_CORPUS:-}" ] && [ -d "$MV_CORPUS" ]; then
    echo "== regress_runner $MV_CORPUS"
    # One line per file is a lot for a corpus: show failures and the summary only.
    out=$(mktemp)
    trap 'rm -f "$out"' EXIT
    "$REGRESS_RUNNER" "$MV_CORPUS" >"$out" 2>&1 || status=1
    grep -v -E ': ok( |$)' "$out"
else
    echo "SKIPPED: corpus part not run: MV_CORPUS=${MV_CORPUS:-<unset>} is not a folder"
fi
exit $status
