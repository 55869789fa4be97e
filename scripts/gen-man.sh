#!/bin/sh
# Writes polyq(1) to stdout from the built binary's own help (the option tables every command's
# --help prints), so the manual and the program never disagree.
#   scripts/gen-man.sh build/polyq > build/polyq.1
set -eu
bin=${1:-build/polyq}
version=$("$bin" --version | awk '{print $2}')
esc() { sed -e 's/\\/\\e/g' -e 's/-/\\-/g'; }
cat <<HEAD
.TH POLYQ 1 "" "polyq $version" "User Commands"
.SH NAME
polyq \- how quantizing a language model treats each human language
.SH SYNOPSIS
HEAD
"$bin" --help | sed -n 's/^\(usage:\)\{0,1\} *\(polyq [a-z].*\)$/\2/p' | while read -r line; do
    printf '.br\n%s\n' "$(printf '%s' "$line" | esc)"
done
cat <<'DESC'
.SH DESCRIPTION
polyq evaluates a model in full precision and quantized on parallel text (FLORES-200 by
default), and reports per language the information lost per sentence, bits per byte, KL
divergence and top-1 agreement, each with a paired-bootstrap interval, and the disparity
across languages. MODEL is a Hugging Face model folder, a GGUF file or a hub id.
.SH COMMANDS
DESC
for cmd in $("$bin" --help | sed -n 's/^\(usage:\)\{0,1\} *polyq \([a-z][a-z]*\).*$/\2/p'); do
    printf '.SS %s\n' "$cmd"
    "$bin" "$cmd" --help | awk '
        function e(s) { gsub(/\\/, "\\e", s); gsub(/-/, "\\-", s); if (s ~ /^[.\047]/) s = "\\&" s; return s }
        NR == 1 { sub(/^usage: /, ""); print ".B " e($0); print ".br"; next }
        /^options:/ { inopt = 1; next }
        !inopt && NF { print e($0); print ".br"; next }
        inopt && /^  -/ {
            line = $0; sub(/^  /, "", line)
            n = index(line, "  ")
            if (n) { head = substr(line, 1, n - 1); rest = substr(line, n); sub(/^ +/, "", rest) }
            else { head = line; rest = "" }
            print ".TP"; print ".B " e(head); if (rest != "") print e(rest); next
        }
        inopt && NF { t = $0; sub(/^ +/, "", t); print e(t) }'
done
cat <<'TAIL'
.SH ENVIRONMENT
.TP
.B POLYQ_DATA
where the text is when \-\-data is not given (a FLORES\-200 folder)
.TP
.B HF_HUB_CACHE, HF_HOME, HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE
as in huggingface_hub
.TP
.B POLYQ_OFFLINE
never use the network
.SH FILES
.TP
.I ~/.cache/polyq/flores200
FLORES\-200, downloaded once
.SH SEE ALSO
The README and docs/ of the polyq sources (docs/metrics.md defines every number).
TAIL
