#!/usr/bin/env bash
# Which C compiler flags for LAME keep the converter's mp3s bit-identical and make it faster
# (ISSUE 5). Builds `vid2mp3-converter` once per flag set in a target directory of its own (never
# the shared one), then converts one long input with every build: outputs are compared byte for
# byte with the default build's, and CPU time (user + system) is measured in interleaved rounds.
#
#   converter/benches/lame-flags.sh WORK_DIR INPUT
#
# How the flags reach LAME: mp3lame-sys builds LAME with autotools; the autotools crate passes
# CFLAGS = the cc crate's flags for the target (cargo's opt-level as -O3, -ffunction-sections
# -fdata-sections -fPIC -m64 -march=x86-64, then $CFLAGS_x86_64_unknown_linux_gnu / $CFLAGS) to
# LAME's configure, and because CFLAGS is set, LAME's configure adds none of its own (no
# -ffast-math). Those CFLAGS variables are also watched by other build scripts (ring, aws-lc-sys),
# so changing them rebuilds half the dependency tree. CPPFLAGS is read by LAME's configure and by
# no build script here, so the variants go through it. It comes before CFLAGS on the compiler's
# command line, where the later -O3 and -march=x86-64 win; so the variants name instruction sets
# with -m flags (which GCC honours whatever -march says) instead of -march=x86-64-v2/v3, and keep
# -O3. mp3lame-sys's build script does not watch CPPFLAGS either, so each variant starts with
# `cargo clean -p mp3lame-sys` in its own target directory.
#
# VARIANTS must keep `default`, the baseline. RUNS (default 3) rounds; LAME_FLAGS_TARGET (default
# .data/lame-flags-target) is the target directory, which the script deletes at the end unless KEEP_TARGET=1.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=${1:?usage: lame-flags.sh WORK_DIR INPUT}
input=${2:?usage: lame-flags.sh WORK_DIR INPUT}
runs=${RUNS:-3}
target=${LAME_FLAGS_TARGET:-$root/.data/lame-flags-target}
mkdir -p "$work"

# x86-64-v2 and v3 as GCC 12 defines the levels (-march=x86-64-v2 = x86-64 + these flags).
v2="-mcx16 -msahf -mpopcnt -msse3 -msse4.1 -msse4.2 -mssse3"
v3="$v2 -mavx -mavx2 -mbmi -mbmi2 -mf16c -mfma -mlzcnt -mmovbe -mxsave"
# name|CPPFLAGS for LAME's build (empty: the default build).
variants=(
    "default|"
    "v2|$v2"
    "v3-nocontract|$v3 -ffp-contract=off"
    "fast-math|-ffast-math"
    "v3|$v3"
)
# VARIANTS="default v2 ..." keeps only the named ones (each build recompiles the converter).
if [[ -n ${VARIANTS:-} ]]; then
    kept=()
    for variant in "${variants[@]}"; do
        [[ " $VARIANTS " == *" ${variant%%|*} "* ]] && kept+=("$variant")
    done
    variants=("${kept[@]}")
fi

build_variant() {
    local name=$1 flags=$2
    [[ -x $work/bin-$name ]] && return
    (
        cd "$root"
        export CARGO_TARGET_DIR=$target CARGO_INCREMENTAL=0
        cargo clean --release -p mp3lame-sys >&2
        CPPFLAGS=$flags cargo build --release -p vid2mp3-converter >&2
    )
    local makefile
    makefile=$(find "$target/release/build" -path '*mp3lame-sys-*/out/build/libmp3lame/Makefile' | head -n 1)
    echo "$name: LAME $(grep '^CPPFLAGS =' "$makefile") $(grep '^CFLAGS =' "$makefile")"
    # Proof that the flags took effect: AVX (ymm) and FMA instructions in LAME's code.
    local lib=${makefile%/build/libmp3lame/Makefile}/lib/libmp3lame.a
    echo "$name: libmp3lame.a has $(objdump -d "$lib" | grep -c ymm) ymm and $(objdump -d "$lib" | grep -c vfmadd) vfmadd instructions"
    cp "$target/release/vid2mp3-converter" "$work/bin-$name"
}

for variant in "${variants[@]}"; do
    build_variant "${variant%%|*}" "${variant#*|}"
done

same_as_default() {
    if cmp -s "$work/default.$2.mp3" "$work/$1.$2.mp3"; then echo "$2 identical"; else echo "$2 DIFFERENT"; fi
}

# Each timed run writes NAME.standard.mp3, which the identity check below compares too.
echo "== CPU seconds (user + system) of convert --profile standard, $runs interleaved rounds"
echo "load before: $(uptime)"
declare -A cpu
for ((round = 0; round < runs; round++)); do
    for variant in "${variants[@]}"; do
        name=${variant%%|*}
        /usr/bin/time -f '%U %S' -o "$work/time.txt" \
            "$work/bin-$name" convert "$input" "$work/$name.standard.mp3" --profile standard >/dev/null
        cpu[$name]+="$(awk '{print $1 + $2}' "$work/time.txt") "
    done
done
echo "load after: $(uptime)"
for variant in "${variants[@]}"; do
    name=${variant%%|*}
    # shellcheck disable=SC2086 # the list of times is meant to split
    printf '%-18s %s\n' "$name" "$(printf '%s\n' ${cpu[$name]} | sort -n | awk '{v[NR] = $1} END {printf "median %.2f s  min %.2f s  (", v[int((NR + 1) / 2)], v[1]; for (i = 1; i <= NR; i++) printf "%s%s", v[i], (i < NR ? " " : ")")}')"
done

# IDENTITY_INPUT (default INPUT) for the other profiles: a shorter file saves time on a busy machine.
identity_input=${IDENTITY_INPUT:-$input}
echo "== bit identity against the default build (standard: $input; fast, cbr128: $identity_input)"
for variant in "${variants[@]}"; do
    name=${variant%%|*}
    for profile in fast cbr128; do
        "$work/bin-$name" convert "$identity_input" "$work/$name.$profile.mp3" --profile "$profile" >/dev/null
    done
    [[ $name == default ]] && continue
    printf '%-18s %s, %s, %s\n' "$name" "$(same_as_default "$name" standard)" \
        "$(same_as_default "$name" fast)" "$(same_as_default "$name" cbr128)"
done

if [[ ${KEEP_TARGET:-0} != 1 ]]; then
    rm -rf "$target"
fi
