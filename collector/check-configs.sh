#!/usr/bin/env bash
# Validate every collector config (*.yaml) in this directory with the real
# collector's "validate" command, building the distributions with build.sh
# if needed (cached after the first build).
#
#   - builder-config*.yaml are builder manifests, not collector configs: skipped
#   - a config that defines the DataDog exporter is validated with the
#     "datadog" distribution, every other one with "core"
#   - variables a config requires (DD_API_KEY) get a dummy value when unset
#   - prometheus.yml is checked with "promtool check config" when promtool
#     is installed
#
# Prints one line per file and a summary; exits non-zero if any check fails.
set -euo pipefail
shopt -s inherit_errexit nullglob

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "${here}"

export DD_API_KEY="${DD_API_KEY:-0123456789abcdef0123456789abcdef}"

needs_datadog() { grep -Eq '^  datadog(/[^:]*)?:' "$1"; }

configs=()
for f in *.yaml; do
    case "$f" in
        builder-config*.yaml) continue ;;
    esac
    configs+=("$f")
done
if [ "${#configs[@]}" -eq 0 ]; then
    echo "no collector configs found in ${here}" >&2
    exit 1
fi

core_bin="" datadog_bin=""
for f in "${configs[@]}"; do
    if needs_datadog "$f"; then
        [ -n "${datadog_bin}" ] || datadog_bin="$(./build.sh datadog | tail -n1)"
    else
        [ -n "${core_bin}" ] || core_bin="$(./build.sh core | tail -n1)"
    fi
done

passed=0 failed=0
for f in "${configs[@]}"; do
    if needs_datadog "$f"; then bin="${datadog_bin}" dist=datadog; else bin="${core_bin}" dist=core; fi
    if out="$("${bin}" validate --config="${here}/${f}" 2>&1)"; then
        echo "ok    ${f} (${dist})"
        passed=$((passed + 1))
    else
        echo "FAIL  ${f} (${dist})"
        printf '%s\n' "${out}" | sed 's/^/      /'
        failed=$((failed + 1))
    fi
done

for f in *.yml; do
    if command -v promtool >/dev/null 2>&1; then
        if out="$(promtool check config "${f}" 2>&1)"; then
            echo "ok    ${f} (promtool)"
            passed=$((passed + 1))
        else
            echo "FAIL  ${f} (promtool)"
            printf '%s\n' "${out}" | sed 's/^/      /'
            failed=$((failed + 1))
        fi
    else
        echo "skip  ${f} (promtool not installed)"
    fi
done

if [ "${failed}" -eq 0 ]; then
    echo "check-configs: all ${passed} checks succeeded"
else
    echo "check-configs: ${failed} of $((passed + failed)) checks FAILED"
fi
[ "${failed}" -eq 0 ]
