# bash completion for polyq (zsh: autoload -U bashcompinit && bashcompinit, then source this).
# Commands and options come from polyq's own help, so they follow the program; --quant offers
# the spec families, --langs and --ref the languages `polyq langs` lists (FLORES-200 codes).
_polyq() {
    local cur prev cmd words
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD-1]}
    cmd=${COMP_WORDS[1]}
    if [ "$COMP_CWORD" -eq 1 ]; then
        words=$(polyq --help 2>/dev/null | sed -n 's/^\(usage:\)\{0,1\} *polyq \([a-z][a-z]*\).*$/\2/p')
        COMPREPLY=($(compgen -W "$words --help --version" -- "$cur"))
        return
    fi
    case "$prev" in
    --quant)
        local specs="fp32 int8 int4-g128 int4-g128-sym int4-g32 int3-g64 int2-g16 gptq-int4-g128
            gptq-int4-act awq-int4-g128 awq-int4-g128-clip awq-int4-g128-duo smoothquant w8a8
            llm-int8 q8_0 q4_0 q4_1 q5_0 q5_1 q2_k q3_k q4_k q5_k q6_k q4_k_m nf4 fp4 nf4-dq
            fp4-dq"
        local head=${cur%,*} last=${cur##*,}
        [ "$head" = "$cur" ] && head="" || head="$head,"
        COMPREPLY=($(compgen -P "$head" -W "$specs" -- "$last"))
        return ;;
    --langs|--ref|--calib)
        local langs head=${cur%,*} last=${cur##*,}
        langs=$(polyq langs --offline 2>/dev/null | awk 'NR > 1 && /_/ {print $1}')
        [ "$head" = "$cur" ] && head="" || head="$head,"
        COMPREPLY=($(compgen -P "$head" -W "all $langs" -- "$last"))
        return ;;
    --split)
        COMPREPLY=($(compgen -W "devtest dev" -- "$cur"))
        return ;;
    --metric)
        COMPREPLY=($(compgen -W "delta_bits_per_sentence delta_bpb delta_nll_per_token
            rel_degradation kld kld_per_sentence top1_agree" -- "$cur"))
        return ;;
    --out|--db|--data|--quantized|--calib-file|--log-sentences|--latex)
        COMPREPLY=($(compgen -f -- "$cur"))
        return ;;
    esac
    if [[ "$cur" == -* ]]; then
        words=$(polyq "$cmd" --help 2>/dev/null | sed -n 's/^  \(--[a-z0-9-]*\).*/\1/p')
        COMPREPLY=($(compgen -W "$words --help" -- "$cur"))
    else
        COMPREPLY=($(compgen -f -- "$cur"))
    fi
}
complete -o filenames -F _polyq polyq
