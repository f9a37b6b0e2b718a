#!/usr/bin/env bash
# Translation template of the module.
#   tools/i18n.sh pot [DATABASE]     regenerate i18n/crm_pipeline_optimizer.pot from a database
#                                     that has the module (default: the demo database)
#   tools/i18n.sh check DATABASE     fail when the committed template differs from the code
set -euo pipefail
source "$(dirname "$0")/env.sh"

POT=$PROJECT_DIR/i18n/$MODULE.pot

export_pot() {  # database, output file
    link_addon
    odoo_bin -d "$1" --i18n-export="$2" --modules="$MODULE" --log-level=error
    [ -s "$2" ] || die "the translation export of $MODULE from $1 is empty"
    # The terms the module writes on crm's records, which Odoo's export leaves out.
    "$PYTHON" "$PROJECT_DIR/tools/pot_foreign_records.py" "$2" "$PROJECT_DIR" "$MODULE"
}

# The header's dates change at every export: compare the terms only.
terms() {
    grep -v -e '^"POT-Creation-Date:' -e '^"PO-Revision-Date:' "$1"
}

case "${1:-pot}" in
    pot)
        export_pot "${2:-$DEMO_DB}" "$POT"
        echo "$POT: $(grep -c '^msgid ' "$POT") terms"
        ;;
    check)
        [ -n "${2:-}" ] || die "usage: tools/i18n.sh check DATABASE"
        fresh=$(mktemp --suffix=.pot)
        trap 'rm -f "$fresh"' EXIT
        export_pot "$2" "$fresh"
        if ! diff -u <(terms "$POT") <(terms "$fresh") >"$fresh.diff"; then
            head -40 "$fresh.diff"
            rm -f "$fresh.diff"
            die "i18n/$MODULE.pot is stale: run 'make pot' and commit it"
        fi
        rm -f "$fresh.diff"
        echo "ok: i18n/$MODULE.pot is current ($(grep -c '^msgid ' "$POT") terms)"
        ;;
    *) die "usage: tools/i18n.sh [pot [DATABASE] | check DATABASE]" ;;
esac
