#!/usr/bin/env bash
# Serves the demo database built by tools/setup.sh.
set -euo pipefail
source "$(dirname "$0")/env.sh"
[ -f "$ODOO_CONF" ] || die "run 'make setup' first"
exec "$PYTHON" "$ODOO_SRC/odoo-bin" -c "$ODOO_CONF" -d "$DEMO_DB" --db-filter="^$DEMO_DB\$"
