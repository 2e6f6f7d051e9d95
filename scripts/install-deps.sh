#!/usr/bin/env bash
# Installs the Debian 12 packages that medveil needs, and only those that are missing.
#
# Usage: scripts/install-deps.sh [GROUP...]      GROUP: build | test | bench | fuzz | all (default: all)
#
#   build  compiler, CMake, the libraries libmedveil links against, and what `make demo` runs
#          (the OCR language data, the openssl command that makes the demo's trustee certificate)
#   test   build + the oracles the test suite compares against (dcmtk, pydicom, dciodvfy, gdcm)
#   bench  build + hyperfine and the tools the benchmark compares against
#   fuzz   build + clang and its libFuzzer/ASan/UBSan runtimes
#   all    every package above
#
# Each package is checked with dpkg-query; when something is missing, the script runs one
# `apt-get update` and one `apt-get install` for the missing packages only. It runs apt-get
# directly as root, through sudo otherwise, and without sudo prints the command and exits 2.
# When nothing is missing it prints a single line and changes nothing.
#
# Exit status: 0 all packages present (or installed now); 2 usage error, not a Debian system,
# or not root and no sudo; anything else is apt-get's own failure status.
set -euo pipefail

readonly PROG=install-deps

readonly PKGS_BUILD=(cmake make gcc clang pkg-config zlib1g-dev libssl-dev libjansson-dev libcmocka-dev
                     libargon2-dev libsqlite3-dev libjpeg62-turbo-dev libopenjp2-7-dev libcharls-dev
                     libtesseract-dev libleptonica-dev tesseract-ocr-eng libpng-dev libp11-kit-dev openssl)
readonly PKGS_TEST=(dcmtk python3-pydicom python3-numpy python3-pil dicom3tools libgdcm-tools libclang-rt-14-dev
                    softhsm2 opensc sqlite3 rsyslog rsyslog-openssl jing libxml2-utils gnutls-bin
                    libopenjp2-tools openssl
                    python3-cryptography
                    tesseract-ocr fonts-dejavu-core)
readonly PKGS_BENCH=(hyperfine dcmtk python3-pydicom python3-numpy libgdcm-tools libopenjp2-tools time openssl)
readonly PKGS_FUZZ=(clang libclang-rt-14-dev)

usage() {
    sed -n '4,11s/^# \{0,1\}//p' "$0" >&2
    exit "${1:-2}"
}

# Collects the packages of every group named on the command line, without duplicates, in order.
wanted=()
add_pkgs() {
    local pkg have
    for pkg in "$@"; do
        for have in "${wanted[@]+"${wanted[@]}"}"; do
            [ "$have" = "$pkg" ] && continue 2
        done
        wanted+=("$pkg")
    done
}

[ "$#" -gt 0 ] || set -- all
groups="$*"
for group in "$@"; do
    case "$group" in
        build) add_pkgs "${PKGS_BUILD[@]}" ;;
        test)  add_pkgs "${PKGS_BUILD[@]}" "${PKGS_TEST[@]}" ;;
        bench) add_pkgs "${PKGS_BUILD[@]}" "${PKGS_BENCH[@]}" ;;
        fuzz)  add_pkgs "${PKGS_BUILD[@]}" "${PKGS_FUZZ[@]}" ;;
        all)   add_pkgs "${PKGS_BUILD[@]}" "${PKGS_TEST[@]}" "${PKGS_BENCH[@]}" "${PKGS_FUZZ[@]}" ;;
        -h|--help|help) usage 0 ;;
        *) printf '%s: unknown group "%s"\n' "$PROG" "$group" >&2; usage ;;
    esac
done

if ! command -v dpkg-query >/dev/null 2>&1; then
    printf '%s: dpkg-query not found: this script supports Debian 12 only.\n' "$PROG" >&2
    printf '%s: install these packages (Debian names) by other means: %s\n' "$PROG" "${wanted[*]}" >&2
    exit 2
fi

# A package counts as present when dpkg reports its state as "installed" (the third word of
# ${Status}: "install ok installed", "hold ok installed"); "config-files", "half-installed",
# "not-installed" and unknown packages count as missing.
missing=()
for pkg in "${wanted[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    [ "${status##* }" = installed ] || missing+=("$pkg")
done

if [ "${#missing[@]}" -eq 0 ]; then
    printf '%s: all %d packages for "%s" are installed\n' "$PROG" "${#wanted[@]}" "$groups"
    exit 0
fi

printf '%s: missing for "%s": %s\n' "$PROG" "$groups" "${missing[*]}"

if [ -r /etc/os-release ]; then
    # shellcheck source=/dev/null
    os_id=$(. /etc/os-release && printf '%s' "${ID:-}")
    # shellcheck source=/dev/null
    os_version=$(. /etc/os-release && printf '%s' "${VERSION_ID:-}")
    if [ "$os_id" != debian ] || [ "$os_version" != 12 ]; then
        printf '%s: warning: written for Debian 12, this is %s %s; package names may differ\n' \
            "$PROG" "${os_id:-unknown}" "${os_version:-}" >&2
    fi
fi

install_args=(install -y --no-install-recommends "${missing[@]}")
if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
else
    printf '%s: not root and sudo is not available; run as root:\n' "$PROG" >&2
    printf '  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get %s\n' "${install_args[*]}" >&2
    exit 2
fi

# sudo resets the environment, so DEBIAN_FRONTEND is passed through env(1).
"${as_root[@]+"${as_root[@]}"}" env DEBIAN_FRONTEND=noninteractive apt-get update
"${as_root[@]+"${as_root[@]}"}" env DEBIAN_FRONTEND=noninteractive apt-get "${install_args[@]}"

still_missing=()
for pkg in "${missing[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    [ "${status##* }" = installed ] || still_missing+=("$pkg")
done
if [ "${#still_missing[@]}" -ne 0 ]; then
    printf '%s: still missing after apt-get: %s\n' "$PROG" "${still_missing[*]}" >&2
    exit 1
fi
printf '%s: installed %s\n' "$PROG" "${missing[*]}"
