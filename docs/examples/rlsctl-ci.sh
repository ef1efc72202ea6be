#!/usr/bin/env bash
# rlsctl in any CI system (GitLab, Jenkins, Buildkite, a cron job): one script,
# one stage per argument. See docs/ci.md.
#
#   rlsctl-ci.sh review   on a merge request: validate, diff against the base
#                         branch into rlsctl-diff.md (post it as a comment),
#                         fail on a widening change unless ALLOW_WIDENING=1
#   rlsctl-ci.sh verify   before merge: apply and verify on the embedded PostgreSQL
#   rlsctl-ci.sh apply    on merge: apply to DATABASE_URL
#   rlsctl-ci.sh drift    on a schedule: exit 1 when DATABASE_URL has drifted
#
# Exit codes are rlsctl's: 0 done, 1 check failed, 2 bad input, 3 database or
# environment failed.
set -euo pipefail

BASE_BRANCH="${BASE_BRANCH:-main}"
MIGRATIONS="${MIGRATIONS:-db/migrations}"

fetch_base() {
  # diff reads the base branch with git; many CI clones are shallow and hold
  # only the commit under test. One commit of the base is enough.
  local refspec="+refs/heads/$BASE_BRANCH:refs/remotes/origin/$BASE_BRANCH"
  if [ "$(git rev-parse --is-shallow-repository)" = true ]; then
    git fetch --no-tags --depth=1 origin "$refspec"
  else
    git fetch --no-tags origin "$refspec"
  fi
}

require_database() {
  if [ -z "${DATABASE_URL:-}" ]; then
    echo "rlsctl-ci.sh $1: set DATABASE_URL (from your CI's secret store)" >&2
    exit 2
  fi
}

case "${1:-}" in
  review)
    fetch_base
    npx rlsctl validate
    npx rlsctl diff "git:origin/$BASE_BRANCH" --format markdown > rlsctl-diff.md
    # Post rlsctl-diff.md as a comment with your platform's tool, e.g.
    #   gh pr comment "$PR_NUMBER" --body-file rlsctl-diff.md
    if [ "${ALLOW_WIDENING:-0}" != 1 ]; then
      npx rlsctl diff "git:origin/$BASE_BRANCH" --fail-on-widening --quiet
    fi
    ;;
  verify)
    # No --db and no DATABASE_URL: the embedded PostgreSQL, with the migrations loaded.
    env -u DATABASE_URL npx rlsctl apply --schema "$MIGRATIONS"
    env -u DATABASE_URL npx rlsctl verify --schema "$MIGRATIONS"
    ;;
  apply)
    require_database apply
    npx rlsctl plan
    npx rlsctl apply
    ;;
  drift)
    require_database drift
    npx rlsctl plan --check
    ;;
  *)
    echo "usage: rlsctl-ci.sh review|verify|apply|drift" >&2
    exit 2
    ;;
esac
