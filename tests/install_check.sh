#!/bin/sh
# make install-check: installs polyq into a fresh prefix, builds tests/install/example.c against
# the installed header and library through pkg-config alone, runs it on a fixture and compares
# the CSV it writes with the one polyq eval + polyq report write for the same run.
#   tests/install_check.sh BUILD_DIR
set -eu
build=${1:-build}
shared=${POLYQ_SHARED:-../shared}
tmp=$(mktemp -d /tmp/polyq-install-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
prefix="$tmp/prefix"
${MAKE:-make} -s install PREFIX="$prefix" BUILD="$build" >/dev/null
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
# shellcheck disable=SC2046
cc -std=c11 -Wall -Wextra -Werror tests/install/example.c $(pkg-config --cflags --libs polyq) \
    -Wl,-rpath,"$prefix/lib" -o "$tmp/example"
model=tests/fixtures/gpt2-tiny-vocab-bf16
langs=eng_Latn,hin_Deva
"$tmp/example" "$model" int4-g16 "$shared/data/flores200" "$langs" 4 "$tmp/api.json" "$tmp/api.csv" > "$tmp/api.txt"
"$prefix/bin/polyq" eval "$model" --quant int4-g16 --data "$shared/data/flores200" --langs "$langs" \
    --max-sentences 4 --out "$tmp/cli.json" > /dev/null 2>&1
"$prefix/bin/polyq" report "$tmp/cli.json" --out "$tmp/report" > /dev/null
fail=0
if ! cmp -s "$tmp/api.csv" "$tmp/report/results.csv"; then
    echo "install-check: the program's CSV differs from polyq report's:" >&2
    diff "$tmp/api.csv" "$tmp/report/results.csv" | head -5 >&2
    fail=1
fi
if [ "$(wc -l < "$tmp/api.txt")" -ne 2 ] || ! grep -q '^hin_Deva int4-g16 ' "$tmp/api.txt"; then
    echo "install-check: the program printed:" >&2
    cat "$tmp/api.txt" >&2
    fail=1
fi
# the manual page names every command and every option their --help lists
man="$prefix/share/man/man1/polyq.1"
if [ ! -s "$man" ] || ! grep -q '^\.TH POLYQ 1' "$man"; then
    echo "install-check: share/man/man1/polyq.1 not installed" >&2
    fail=1
else
    for cmd in $("$prefix/bin/polyq" --help | sed -n 's/^\(usage:\)\{0,1\} *polyq \([a-z][a-z]*\).*$/\2/p'); do
        grep -q "^\.SS $cmd\$" "$man" || { echo "install-check: polyq.1 lacks $cmd" >&2; fail=1; }
        for opt in $("$prefix/bin/polyq" "$cmd" --help | sed -n 's/^  \(--[a-z0-9-]*\).*/\1/p'); do
            esc=$(printf '%s' "$opt" | sed 's/-/\\\\-/g')
            grep -q "^\.B $esc" "$man" || { echo "install-check: polyq.1 lacks $cmd $opt" >&2; fail=1; }
        done
    done
fi
# bash completion: commands and options from the program itself
comp="$prefix/share/bash-completion/completions/polyq"
if command -v bash >/dev/null; then
    got=$(PATH="$prefix/bin:$PATH" bash -c '. "$1"; COMP_WORDS=(polyq eval --la); COMP_CWORD=2; _polyq; echo "${COMPREPLY[*]}"' _ "$comp")
    [ "$got" = "--langs" ] || { echo "install-check: completing 'polyq eval --la' gave '$got'" >&2; fail=1; }
    got=$(PATH="$prefix/bin:$PATH" bash -c '. "$1"; COMP_WORDS=(polyq eval --quant int8,q4_k); COMP_CWORD=3; _polyq; echo "${COMPREPLY[*]}"' _ "$comp")
    case "$got" in *int8,q4_k_m*) ;; *) echo "install-check: completing --quant gave '$got'" >&2; fail=1 ;; esac
fi
if [ ! -e "$prefix/lib/libpolyq.so.0" ] || [ ! -e "$prefix/lib/libpolyq.a" ] || [ ! -x "$prefix/bin/polyq" ]; then
    echo "install-check: libpolyq.so.0, libpolyq.a or bin/polyq not installed" >&2
    fail=1
fi
if objdump -p "$tmp/example" | grep -q 'NEEDED.*libpolyq.so.0'; then :; else
    echo "install-check: the program is not linked against libpolyq.so.0" >&2
    fail=1
fi
echo "install-check: $((1 - fail)) passed, $fail failed"
exit $fail
