#!/usr/bin/env bash
# fuzz.sh: build the libFuzzer targets (spec/fuzz/fuzz_*.c) into build-fuzz/ with clang
# (every object instrumented: coverage + ASan + UBSan), then run each for a bounded time.
# Fails (exit 1) on any finding: crash, sanitizer report, abort() of an invariant,
# timeout or leak; the reproducer is kept and its path printed.
#
#   scripts/fuzz.sh                   every target, 5 s each (about 30 s in all)
#   scripts/fuzz.sh --long 600        every target, 600 s each (a longer hunt)
#   scripts/fuzz.sh fuzz_ws_http      only the named target(s)
#   options: --time S (seconds per target), --no-build, --build-dir DIR,
#            --keep DIR (grow a corpus in DIR/<target>/ instead of a temp dir)
#
# The seed corpora under spec/fuzz/corpus/<name>/ are only read: new inputs go to a
# temp dir (or --keep DIR), so a run never dirties the repository. Reproduce a finding
# with: build-fuzz/fuzz_<name> <crash-file>
set -euo pipefail
cd "$(dirname "$0")/.."

secs=5 build=1 build_dir=build-fuzz keep="" targets=()
while (($#)); do
  case "$1" in
    --long) secs=${2:?--long needs seconds}; shift 2 ;;
    --time) secs=${2:?--time needs seconds}; shift 2 ;;
    --no-build) build=0; shift ;;
    --build-dir) build_dir=${2:?}; shift 2 ;;
    --keep) keep=${2:?}; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
if ((${#targets[@]} == 0)); then
  for f in spec/fuzz/fuzz_*.c; do targets+=("$(basename "$f" .c)"); done
fi

if ((build)); then
  cmake -S . -B "$build_dir" -DCMAKE_C_COMPILER=clang -DMW_FUZZ=ON >/dev/null
  cmake --build "$build_dir" -j"$(nproc)" --target "${targets[@]}"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/moonwire-fuzz-XXXXXX")
trap 'rm -rf "$work"' EXIT
findings="$build_dir/fuzz-findings"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

failed=0
for t in "${targets[@]}"; do
  name=${t#fuzz_}
  bin="$build_dir/$t"
  seeds="spec/fuzz/corpus/$name"
  [ -x "$bin" ] || { echo "fuzz.sh: $bin is not built" >&2; exit 2; }
  [ -d "$seeds" ] || { echo "fuzz.sh: no seed corpus $seeds" >&2; exit 2; }
  corpus=${keep:+$keep/$name}
  corpus=${corpus:-$work/corpus-$name}
  mkdir -p "$corpus" "$work/art-$name"
  log="$work/$name.log"
  # The first corpus dir receives new inputs; the seeds are read only.
  if "$bin" -max_total_time="$secs" -timeout=5 -rss_limit_mb=2048 -max_len=65536 \
       -print_final_stats=1 -artifact_prefix="$work/art-$name/" \
       "$corpus" "$seeds" >"$log" 2>&1; then
    runs=$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\1 runs in \2 s/p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)
    echo "fuzz: $t ok: ${runs:-?} (${cov:-cov ?}, corpus $(ls "$corpus" | wc -l) new)"
  else
    failed=1
    mkdir -p "$findings"
    cp "$work/art-$name/"* "$findings/" 2>/dev/null || true
    echo "fuzz: $t FAILED; reproducers in $findings/:" >&2
    ls "$work/art-$name/" >&2 || true
    grep -E 'ERROR|runtime error|SUMMARY|Assertion|abort|deadly' "$log" | head -20 >&2 || true
    tail -40 "$log" >&2
  fi
done
exit $failed
