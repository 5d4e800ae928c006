#!/usr/bin/env bash
# test.sh: bootstrap (install what is missing, build into build/), run every test with
# ctest, then build the ASan+UBSan configuration into build-asan/ and run them all again,
# then build the libFuzzer targets with clang into build-fuzz/ and run each for 5 s
# (scripts/fuzz.sh; `scripts/fuzz.sh --long 600` for a longer hunt).
# ctest runs one job per core (CMakeLists.txt says which tests run alone).
# ctest's summary closes the output; the exit status is non-zero on any failure (set -e
# stops at the first failing ctest run, so its summary is the last thing printed).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/bootstrap.sh

echo "== ctest: build/ (includes the valgrind spec; valgrind cannot run ASan binaries)"
ctest --test-dir build -j"$(nproc)" --output-on-failure

echo "== ctest: build-asan/ (AddressSanitizer + UndefinedBehaviorSanitizer)"
BUILD_DIR=build-asan scripts/bootstrap.sh -DMW_SANITIZE=ON
export ASAN_OPTIONS=detect_leaks=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
ctest --test-dir build-asan -j"$(nproc)" --output-on-failure

echo "== ctest: build-fuzz/ (libFuzzer targets, 5 s each; longer: scripts/fuzz.sh --long 600)"
BUILD_DIR=build-fuzz scripts/bootstrap.sh -DCMAKE_C_COMPILER=clang -DMW_FUZZ=ON
ctest --test-dir build-fuzz -j"$(nproc)" -L fuzz --output-on-failure
