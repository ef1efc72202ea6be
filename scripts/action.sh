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

# RLSCTL_BIN lets the test run the repository's own binary; users get the published package.
if [ -n "${RLSCTL_BIN:-}" ]; then
  run=(node "$RLSCTL_BIN")
else
  run=(npx --yes "rlsctl@${RLSCTL_VERSION:-latest}")
fi

args=("$command" --policies "${RLSCTL_POLICIES:-policies}")
if [ -n "${RLSCTL_SCHEMA:-}" ] && [ -z "${RLSCTL_DATABASE_URL:-}" ]; then
  args+=(--schema "$RLSCTL_SCHEMA")
fi
# Word-splitting of the free-form arguments is intended: "git:origin/main --format markdown".
# shellcheck disable=SC2206
extra=(${RLSCTL_ARGS:-})
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
