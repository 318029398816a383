# bash completion for ptbuild: commands, options, and variants and job ids from the daemon.
_ptbuild() {
  local cur prev words cword
  _init_completion 2>/dev/null || { cur="${COMP_WORDS[COMP_CWORD]}"; prev="${COMP_WORDS[COMP_CWORD-1]}"; words=("${COMP_WORDS[@]}"); cword=$COMP_CWORD; }
  local conn=() cmd="" i
  for ((i = 1; i < cword; i++)); do
    case "${words[i]}" in
      --socket|--config) conn+=("${words[i]}" "${words[i+1]}"); ((i++)) ;;
      -*) ;;
      *) [ -z "$cmd" ] && cmd="${words[i]}" ;;
    esac
  done
  case "$prev" in
    --socket|--config) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    --state) COMPREPLY=($(compgen -W "queued running succeeded failed cancelled" -- "$cur")); return ;;
    --priority|--limit|--tail|--timeout|--reason|--since|--good|--bad) return ;;
    --public-key|--dir) COMPREPLY=($(compgen -f -- "$cur")); return ;;
  esac
  if [ -z "$cmd" ]; then
    COMPREPLY=($(compgen -W "$(ptbuild _complete commands) --json --socket --config --help" -- "$cur"))
    return
  fi
  local opts="--json --help"
  case "$cmd" in
    queue) opts+=" --priority --reason --force" ;;
    status) opts+=" --watch" ;;
    jobs) opts+=" --state --limit --variant" ;;
    log) opts+=" --tail -f --follow" ;;
    wait) opts+=" --timeout" ;;
    publish) opts+=" --force" ;;
    changes) opts+=" --since" ;;
    bisect) opts+=" --good --bad" ;;
    provenance) opts+=" --verify --public-key" ;;
    keys) opts+=" --dir generate" ;;
    recipes) opts+=" --write --force plan render" ;;
  esac
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
    return
  fi
  case "$cmd" in
    queue|status|publish|nightly) COMPREPLY=($(compgen -W "all $(ptbuild _complete variants "${conn[@]}")" -- "$cur")) ;;
    bisect) COMPREPLY=($(compgen -W "status cancel $(ptbuild _complete variants "${conn[@]}")" -- "$cur")) ;;
    keys) COMPREPLY=($(compgen -W "generate" -- "$cur")) ;;
    show|log|wait|cancel|retry|changes|provenance)
      COMPREPLY=($(compgen -W "$(ptbuild _complete jobs "${conn[@]}") $(ptbuild _complete variants "${conn[@]}")" -- "$cur")) ;;
    recipes) COMPREPLY=($(compgen -W "plan render" -- "$cur")) ;;
  esac
}
complete -F _ptbuild ptbuild
