#!/usr/bin/env bash
# Build the tradetel OpenTelemetry Collector distribution(s) with the official
# OpenTelemetry Collector builder (ocb), from upstream Go modules.
#
# Usage: build.sh [core|datadog|all]...      (default: core)
#
#   core     builder-config.yaml          -> _build/otelcol-tradetel/otelcol-tradetel
#   datadog  builder-config-datadog.yaml  -> _build/otelcol-tradetel-datadog/otelcol-tradetel-datadog
#   all      both of the above
#
# Prints the absolute path of each requested binary on stdout, one per line,
# in the order requested; all build logs go to stderr.
#
# A binary is reused when the sha256 of its manifest matches the one stored
# next to it (<binary>.sha256), so repeated calls are cheap. The builder
# version is read from the manifest's "# builder-version:" line.
# Set TRADETEL_COLLECTOR_REBUILD=1 to force a rebuild.
#
# Needs only Go on PATH and access to a Go module proxy. GOPATH, GOMODCACHE
# and GOCACHE stay at the Go defaults (shared between runs); the builder
# binary (GOBIN) and the generated sources live under _build/.
set -euo pipefail
shopt -s inherit_errexit

BUILDER_MODULE="go.opentelemetry.io/collector/cmd/builder"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
build_dir="${here}/_build"

log() { printf '[collector/build.sh] %s\n' "$*" >&2; }

if ! command -v go >/dev/null 2>&1; then
    log "error: 'go' not found on PATH (Go >= 1.25 is required)"
    exit 1
fi

targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
    targets=(core)
fi
expanded=()
for t in "${targets[@]}"; do
    case "$t" in
        core | datadog) expanded+=("$t") ;;
        all) expanded+=(core datadog) ;;
        -h | --help)
            sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//' >&2
            exit 0
            ;;
        *)
            log "error: unknown target '$t' (expected core, datadog or all)"
            exit 2
            ;;
    esac
done

mkdir -p "${build_dir}"

# Serialise concurrent invocations (e.g. parallel test workers).
exec 9>"${build_dir}/.lock"
if command -v flock >/dev/null 2>&1; then
    flock 9
fi

export GOBIN="${build_dir}/bin"
mkdir -p "${GOBIN}"

# The pinned builder version is the "# builder-version: vX.Y.Z" line of the
# manifest; each version is installed once into _build/bin as builder-vX.Y.Z.
ensure_builder() {
    local version="$1" exe="${GOBIN}/builder-$1"
    local have=""
    if [ -x "${exe}" ]; then
        have="$("${exe}" version 2>/dev/null || true)"
    fi
    if [ "${have##* }" != "${version}" ]; then
        log "installing ${BUILDER_MODULE}@${version} into ${GOBIN}"
        local tmp
        tmp="$(mktemp -d "${build_dir}/gobin.XXXXXX")"
        if ! GOBIN="${tmp}" go install "${BUILDER_MODULE}@${version}"; then
            rm -rf "${tmp}"
            log "error: could not install ${BUILDER_MODULE}@${version}"
            exit 1
        fi
        mv -f "${tmp}/builder" "${exe}"
        rmdir "${tmp}"
    fi
    printf '%s\n' "${exe}"
}

build_one() {
    local target="$1" manifest name
    case "$target" in
        core) manifest="builder-config.yaml" name="otelcol-tradetel" ;;
        datadog) manifest="builder-config-datadog.yaml" name="otelcol-tradetel-datadog" ;;
    esac
    local out_dir="${build_dir}/${name}"
    local binary="${out_dir}/${name}"
    local stamp="${binary}.sha256"
    local version want
    version="$(sed -n 's/^# builder-version: *\(v[0-9][0-9.]*\) *$/\1/p' "${here}/${manifest}" | head -n1)"
    if [ -z "${version}" ]; then
        log "error: ${manifest} has no '# builder-version: vX.Y.Z' line"
        exit 1
    fi
    want="$(sha256sum <"${here}/${manifest}" | cut -d' ' -f1)"

    if [ "${TRADETEL_COLLECTOR_REBUILD:-0}" != "1" ] && [ -x "${binary}" ] && [ -f "${stamp}" ] \
        && [ "$(cat "${stamp}")" = "${want}" ]; then
        log "${name}: up to date (${manifest} unchanged), reusing cached binary"
    else
        local builder
        builder="$(ensure_builder "${version}")"
        log "${name}: building from ${manifest} with builder ${version} (several minutes on a cold cache)"
        rm -f "${stamp}"
        local start=$SECONDS
        local goflags="${GOFLAGS:-}"
        if [ "${target}" = datadog ]; then
            # The builder runs "go mod tidy", which also resolves the test-only
            # dependencies of every dependency. A few of the DataDog exporter's
            # (old datadog-agent test helpers) have no checksum-database entry
            # on the module proxy, so tidy stops on them although the binary
            # never uses them. "-e" (from GOFLAGS; only "go mod tidy" and
            # "go list" know it) lets tidy carry on; anything the build really
            # needs still fails loudly in "go build".
            goflags="${goflags:+${goflags} }-e"
        fi
        # The manifest's dist.output_path is relative to this directory.
        (cd "${here}" && GOFLAGS="${goflags}" "${builder}" --config="${manifest}" >&2)
        if [ ! -x "${binary}" ]; then
            log "error: the builder finished but ${binary} is missing"
            exit 1
        fi
        printf '%s\n' "${want}" >"${stamp}"
        log "${name}: built in $((SECONDS - start)) s"
    fi
    printf '%s\n' "${binary}"
}

for t in "${expanded[@]}"; do
    build_one "$t"
done
