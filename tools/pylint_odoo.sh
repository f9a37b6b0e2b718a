#!/usr/bin/env bash
# pylint with the OCA's Odoo plugin, on the addon under its module name (for pre-commit).
# Each tracked Python file is named: pylint does not walk into the linked folders of
# .build/addons/crm_pipeline_optimizer. Left out: missing-readme (it looks for README.rst; the
# README is Markdown) and consider-merging-classes-inherited (crm.lead's extension is split
# by concern, a file each, on purpose).
set -uo pipefail
source "$(dirname "$0")/env.sh"
link_addon
mapfile -t files < <(cd "$PROJECT_DIR" && git ls-files '*.py' ':!:tools/*' | sed "s|^|$MODULE/|")
cd "$ADDONS_DIR" && "$VENV/bin/pylint" --rcfile="$PROJECT_DIR/.pylintrc" \
    --disable=missing-readme,consider-merging-classes-inherited \
    "$MODULE/__manifest__.py" "${files[@]}"
