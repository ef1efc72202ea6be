#!/usr/bin/env bash
# The GitHub Action's one step (action.yml), kept in a script so it can be tested offline.
# Inputs come as RLSCTL_* environment variables; the database URL never reaches the command line
# (it is passed as DATABASE_URL, so it does not show in the process list or the log).
set -uo pipefail

# Bad input is exit 2, as rlsctl's own, and the exit-code output is set on every path.
fail_input() {
  echo "rlsctl action: $1" >&2
  echo "exit-code=2" >> "${GITHUB_OUTPUT:-/dev/null}"
  exit 2
}

command="${RLSCTL_COMMAND:-}"
case "$command" in
  validate|compile|plan|apply|audit|explain|verify|diff|init) ;;
  '') fail_input "the command input is required (validate, compile, plan, apply, audit, explain, verify, diff or init)" ;;
  *) fail_input "unknown command '$command': use validate, compile, plan, apply, audit, explain, verify, diff or init" ;;
esac

# The version that runs is exact: the action's own (package.json next to action.yml) unless the
# version input names another exact version. Never a tag such as latest, a range or another
# package spec (github:..., a URL): the process gets the database credentials.
version="${RLSCTL_VERSION:-}"
if [ -z "$version" ]; then
  version=$(node -p 'require(process.argv[1]).version' "${RLSCTL_ACTION_PATH:-.}/package.json" 2>/dev/null) ||
    fail_input "cannot read the action's own version from ${RLSCTL_ACTION_PATH:-.}/package.json"
fi
if ! [[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$ ]]; then
  fail_input "version '$version' is not an exact version such as 1.2.3: the action runs a pinned rlsctl only"
fi

# RLSCTL_BIN lets the test run the repository's own binary; users get the published package.
if [ -n "${RLSCTL_BIN:-}" ]; then
  run=(node "$RLSCTL_BIN")
else
  run=(npx --yes "--package=rlsctl@$version" -- rlsctl)
fi

# The args input is split into words as a shell splits quoted words, and nothing else: blanks
# separate words, '...' and "..." keep blanks (a backslash escapes " and \ inside "..."), a
# backslash outside quotes escapes the next character. No globbing, no $variables, no $(...),
# no ~: every word reaches rlsctl verbatim.
split_args() {
  local s=$1 word='' have=0 quote='' c i
  extra=()
  for ((i = 0; i < ${#s}; i++)); do
    c=${s:i:1}
    if [ "$quote" = "'" ]; then
      if [ "$c" = "'" ]; then quote=''; else word+=$c; fi
    elif [ "$quote" = '"' ]; then
      if [ "$c" = '"' ]; then
        quote=''
      elif [ "$c" = '\' ] && [[ "${s:i+1:1}" == [\"\\] ]]; then
        i=$((i + 1))
        word+=${s:i:1}
      else
        word+=$c
      fi
    else
      case "$c" in
        [[:space:]]) if [ "$have" = 1 ]; then extra+=("$word"); word=''; have=0; fi ;;
        "'" | '"') quote=$c; have=1 ;;
        '\')
          i=$((i + 1))
          [ "$i" -lt "${#s}" ] || fail_input "the args input ends with a lone backslash"
          word+=${s:i:1}
          have=1
          ;;
        *) word+=$c; have=1 ;;
      esac
    fi
  done
  [ -z "$quote" ] || fail_input "the args input has an unmatched $quote quote"
  if [ "$have" = 1 ]; then extra+=("$word"); fi
}

args=("$command" --policies "${RLSCTL_POLICIES:-policies}")
if [ -n "${RLSCTL_SCHEMA:-}" ] && [ -z "${RLSCTL_DATABASE_URL:-}" ]; then
  args+=(--schema "$RLSCTL_SCHEMA")
fi
split_args "${RLSCTL_ARGS:-}"
args+=("${extra[@]}")

if [ -n "${RLSCTL_DATABASE_URL:-}" ]; then export DATABASE_URL="$RLSCTL_DATABASE_URL"; else unset DATABASE_URL; fi

code=0
if [ -n "${RLSCTL_SARIF:-}" ]; then
  "${run[@]}" "${args[@]}" --format sarif > "$RLSCTL_SARIF" || code=$?
else
  "${run[@]}" "${args[@]}" || code=$?
fi
echo "exit-code=$code" >> "${GITHUB_OUTPUT:-/dev/null}"
exit "$code"
