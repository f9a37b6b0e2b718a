#!/usr/bin/env bash
# The OCA's module checks (oca-checks-odoo-module, for pre-commit): they read the addon
# under its module name, so they run on a copy named crm_pipeline_optimizer of the tracked
# files; the paths they print are the repository's.
set -uo pipefail
source "$(dirname "$0")/env.sh"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/$MODULE"
(cd "$PROJECT_DIR" && git ls-files -z | xargs -0 cp --parents -t "$stage/$MODULE")
git -C "$stage" init -q
"$VENV/bin/oca-checks-odoo-module" "$@" "$stage/$MODULE/__manifest__.py" 2>&1 |
    sed "s|$stage/$MODULE/||g; s|tmp/[^ ]*/$MODULE/||g"
exit "${PIPESTATUS[0]}"
