# Sourced by every ci/ script: help, stage gating, the build's identity, and
# the failure notice. Bash, because the steps run in builder images that share
# nothing but a shell (node, pulumi), and the install step runs before any
# Node tool exists.
set -euo pipefail

CI_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Where steps leave files for later steps (zips, the deployed URL); /workspace persists between Cloud Build steps.
CI_OUT="${CI_OUT:-$CI_ROOT/dist/ci}"

# The pipeline per branch: Cloud Build runs every step and each step asks this
# whether it applies, because a build config has no conditional steps.
ci_stages_for() {
  case "$1" in
    develop) echo "runner install typecheck test package upload preview notify" ;;
    master) echo "runner install typecheck test package upload preview deploy smoke notify" ;;
    *) echo "runner install typecheck test notify" ;;
  esac
}

# `ci_main STAGE "$@"` with HELP set: answers --help, then skips the stage when
# PIPELINE_BRANCH is set (cloudbuild.yaml always sets it) and that branch's
# pipeline lacks it; set but empty (a build submitted by hand) is "other": tests only.
# CI_DRY_RUN=1 stops after that decision, so a test can evaluate the pipeline.
ci_main() {
  CI_STAGE="$1"
  shift
  case "${1:-}" in -h | --help) printf '%s\n' "$HELP"; exit 0 ;; esac
  if [[ -n "${PIPELINE_BRANCH+set}" && " $(ci_stages_for "$PIPELINE_BRANCH") " != *" $CI_STAGE "* ]]; then
    echo "ci: skip $CI_STAGE (not in the $PIPELINE_BRANCH pipeline)"
    exit 0
  fi
  if [[ "${CI_DRY_RUN:-}" == 1 ]]; then
    echo "ci: run $CI_STAGE $*"
    exit 0
  fi
  trap ci_on_exit EXIT
  ci_note_build_start
}

# Cloud Build kills the step that runs when the build's timeout comes without
# running its EXIT trap, so that failure would post nothing. The build's start
# is kept where every step sees it (the first step to run writes it), and
# ci_bounded stops a step's long command CI_DEADLINE_MARGIN_S before the
# build's timeout (CI_BUILD_TIMEOUT_S, cloudbuild.yaml's `timeout`): the step
# then fails as any other and reports itself. Unset (by hand), nothing is bounded.
CI_DEADLINE_MARGIN_S="${CI_DEADLINE_MARGIN_S:-60}"
ci_note_build_start() {
  [[ -n "${CI_BUILD_TIMEOUT_S:-}" ]] || return 0
  mkdir -p "$CI_OUT"
  [[ -s "$CI_OUT/build-started-at" ]] || date +%s >"$CI_OUT/build-started-at"
}

# `ci_bounded CMD...`: CMD, stopped (TERM, then KILL 10 s later, its whole process group) when the build's deadline comes.
ci_bounded() {
  [[ -n "${CI_BUILD_TIMEOUT_S:-}" ]] || {
    "$@"
    return
  }
  local left=$(($(cat "$CI_OUT/build-started-at") + CI_BUILD_TIMEOUT_S - CI_DEADLINE_MARGIN_S - $(date +%s)))
  ((left > 0)) || left=1
  local status=0
  timeout -k 10 "$left" "$@" || status=$?
  if ((status == 124 || status == 137)); then
    echo "ci: $CI_STAGE stopped: the build's ${CI_BUILD_TIMEOUT_S} s timeout was ${CI_DEADLINE_MARGIN_S} s away ($*)" >&2
  fi
  return "$status"
}

# Temporary paths a script asks to have removed when it exits.
CI_CLEANUP=()

# Cloud Build has no `finally`: a failing step reports itself before the build stops.
ci_on_exit() {
  local status=$?
  ((${#CI_CLEANUP[@]} == 0)) || rm -rf "${CI_CLEANUP[@]}"
  if ((status != 0)) && [[ -n "${CHAT_WEBHOOK_URL:-}" && "$CI_STAGE" != notify ]]; then
    "$CI_ROOT/ci/notify" failure "$CI_STAGE" || echo "ci: the failure notice failed too" >&2
  fi
  exit "$status"
}

ci_die() {
  echo "ci: $*" >&2
  exit 1
}

# Cloud Build passes these as env (its /workspace has no .git); by hand, git knows.
ci_branch() { echo "${BRANCH_NAME:-$(git -C "$CI_ROOT" rev-parse --abbrev-ref HEAD)}"; }
ci_commit() { echo "${COMMIT_SHA:-$(git -C "$CI_ROOT" rev-parse HEAD)}"; }
ci_short_sha() { echo "${SHORT_SHA:-$(git -C "$CI_ROOT" rev-parse --short=7 HEAD)}"; }
# The stack a branch deploys to; branch names with slashes become file-name safe.
ci_stack() { echo "${STACK:-$(ci_branch | tr '/' '-')}"; }
