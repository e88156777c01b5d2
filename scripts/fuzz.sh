#!/usr/bin/env bash
# Coverage-guided fuzzing with libFuzzer (docs/fuzzing.md).
#
#   scripts/fuzz.sh [TARGET] [SECONDS] [-- LIBFUZZER_FLAGS...]
#
# TARGET   jpeg | png | all (default all; all runs the targets one after another)
# SECONDS  time per target (default 60); 0 = no fuzzing, only replay the seed corpus and
#          Tests/Fixtures/images/regressions/ through the target (a quick regression check)
# Extra flags after -- go to libFuzzer, e.g. `scripts/fuzz.sh png 600 -- -runs=1000000`.
#
# Builds into .build-fuzz/ (never committed): binaries in bin/, the growing corpus in
# corpus/TARGET (the committed seeds in Fuzz/corpus/TARGET are read, never written),
# crashes, leaks and timeouts in artifacts/TARGET/, the whole log in logs/TARGET.log.
# The C targets use clang with -fsanitize=fuzzer,address,undefined: the Swift toolchain's
# clang (which ships libFuzzer), or $CC if set.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/.build-fuzz"
TARGET="${1:-all}"
SECONDS_PER_TARGET="${2:-60}"
shift $(( $# >= 2 ? 2 : $# ))
if [[ "${1:-}" == "--" ]]; then shift; fi
EXTRA_FLAGS=("$@")

# Every fuzz target, in the order `all` runs them. A new target (for example one of the
# Swift parsers) is a name here plus a case in build_target below.
TARGETS=(jpeg png)

die() { echo "fuzz.sh: $*" >&2; exit 1; }

[[ "$SECONDS_PER_TARGET" =~ ^[0-9]+$ ]] || die "SECONDS must be a whole number, got '$SECONDS_PER_TARGET'"

# Sets CLANG to a clang whose -fsanitize=fuzzer links ($CC, the Swift toolchain's, then
# Debian's) and LINKER to -fuse-ld=lld when that works (gold warns about every ASan symbol).
CLANG="" LINKER=""
find_clang() {
    [[ -n "$CLANG" ]] && return
    local candidate probe="$OUT/probe"
    mkdir -p "$OUT"
    printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' \
        > "$probe.c"
    for candidate in ${CC:-} /opt/swift/usr/bin/clang clang; do
        command -v "$candidate" > /dev/null || continue
        for LINKER in -fuse-ld=lld ""; do
            if "$candidate" -fsanitize=fuzzer $LINKER "$probe.c" -o "$probe" 2> /dev/null; then
                CLANG="$candidate"
                return
            fi
        done
    done
    die "no clang with libFuzzer found (set CC, or install the Swift toolchain or Debian's clang)"
}

# The C decoders (Sources/CImageIO) with the system libjpeg/libpng, which are not
# instrumented: coverage counts cimageio's own code, the sanitizers watch its memory.
build_c_target() {
    local name="$1"
    find_clang
    "$CLANG" -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined $LINKER \
        -fno-sanitize-recover=undefined -I "$ROOT/Sources/CImageIO/include" \
        "$ROOT/Fuzz/c/fuzz_$name.c" "$ROOT"/Sources/CImageIO/*.c -ljpeg -lpng \
        -o "$OUT/bin/fuzz_$name"
}

build_target() {
    mkdir -p "$OUT/bin"
    case "$1" in
        jpeg | png) build_c_target "$1" ;;
        # Swift-parser targets go here, one case each, building "$OUT/bin/fuzz_$1".
        *) die "unknown target '$1' (known: ${TARGETS[*]} all)" ;;
    esac
}

run_target() {
    local name="$1" bin="$OUT/bin/fuzz_$1" seeds="$ROOT/Fuzz/corpus/$1"
    local corpus="$OUT/corpus/$name" artifacts="$OUT/artifacts/$name/" log="$OUT/logs/$name.log"
    mkdir -p "$corpus" "$artifacts" "$OUT/logs"
    [[ -d "$seeds" ]] || die "no seed corpus at $seeds"
    echo "== $name: building"
    build_target "$name"
    if [[ "$SECONDS_PER_TARGET" == 0 ]]; then
        local inputs=("$seeds"/*)
        local regressions=("$ROOT/Tests/Fixtures/images/regressions"/*)
        [[ -e "${regressions[0]}" ]] && inputs+=("${regressions[@]}")
        echo "== $name: replaying ${#inputs[@]} seed and regression inputs"
        "$bin" -runs=1 "${inputs[@]}" "${EXTRA_FLAGS[@]}" > "$log" 2>&1 ||
            { tail -n 40 "$log"; die "$name: an input crashed (log: $log)"; }
        echo "== $name: no crash"
        return
    fi
    echo "== $name: fuzzing for ${SECONDS_PER_TARGET}s (log: ${log#"$ROOT"/})"
    local status=0
    # One job: the machine's cores are shared. The first corpus directory is the one written.
    "$bin" -max_total_time="$SECONDS_PER_TARGET" -timeout=30 -rss_limit_mb=4096 \
        -print_final_stats=1 -artifact_prefix="$artifacts" "${EXTRA_FLAGS[@]}" \
        "$corpus" "$seeds" > "$log" 2>&1 || status=$?
    # libFuzzer's last status line ("#N DONE cov: C ft: F corp: ...") and its final stats.
    grep -E $'^#[0-9]+[ \t]+(DONE|pulse|NEW|REDUCE)' "$log" | tail -n 1 || true
    grep -E '^stat::(number_of_executed_units|peak_rss_mb)' "$log" || true
    if [[ $status -ne 0 ]]; then
        grep -E '^(==[0-9]+==ERROR|SUMMARY|artifact_prefix|Test unit written)' "$log" || true
        die "$name: libFuzzer stopped with status $status; see $log and $artifacts"
    fi
}

if [[ "$TARGET" != all && " ${TARGETS[*]} " != *" $TARGET "* ]]; then
    die "unknown target '$TARGET' (known: ${TARGETS[*]} all)"
fi
case "$TARGET" in
    all) for name in "${TARGETS[@]}"; do run_target "$name"; done ;;
    *) run_target "$TARGET" ;;
esac
