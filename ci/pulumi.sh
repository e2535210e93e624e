# Sourced by ci/preview and ci/deploy: the one thing both do first. The stack's
# sourceVersion names the uploaded zips (<shortSha>/<function>-<stack>.zip), so
# infra/ deploys exactly the artifacts this commit's tests passed on.
ci_pulumi_prepare() {
  PULUMI_STACK="$(ci_stack)"
  PULUMI_CWD="$CI_ROOT/infra"
  command -v pulumi >/dev/null || ci_die "pulumi is not on PATH (the CLI installs from pulumi.com, not from npm)"
  pulumi config set flights:sourceVersion "$(ci_short_sha)" --stack "$PULUMI_STACK" --cwd "$PULUMI_CWD" --non-interactive
}
