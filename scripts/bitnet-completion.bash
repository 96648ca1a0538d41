# bash completion for bitnet. Commands and flags come from the binary's own --help at completion
# time, so they cannot fall behind it. Installed to share/bash-completion/completions/bitnet.
_bitnet() {
  local cur=${COMP_WORDS[COMP_CWORD]} cmd="" i
  for ((i = 1; i < COMP_CWORD; i++)); do
    case ${COMP_WORDS[i]} in
      -*) ;;
      *) cmd=${COMP_WORDS[i]}; break ;;
    esac
  done
  local help
  if [[ -z $cmd ]]; then
    help=$("${COMP_WORDS[0]}" --help 2>/dev/null)
    if [[ $cur != -* ]]; then
      COMPREPLY=($(compgen -W "$(sed -n '/^Subcommands:/,/^$/s/^  \([a-z][a-z-]*\).*/\1/p' <<<"$help")" -- "$cur"))
      return
    fi
  else
    help=$("${COMP_WORDS[0]}" "$cmd" --help 2>/dev/null)
  fi
  COMPREPLY=($(compgen -W "$(grep -oE '(^|[ ,])--?[a-zA-Z][a-zA-Z0-9-]*' <<<"$help" | tr -d ' ,' | sort -u)" -- "$cur"))
}
complete -o default -F _bitnet bitnet
