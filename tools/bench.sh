#!/usr/bin/env bash
# Benchmarks on a large realistic CRM history. See README.md, "Benchmarks".
#   tools/bench.sh data   build the dataset database (N leads, SEED), replacing an older one
#   tools/bench.sh run [--only SECTION]
#                         run the benchmarks, building the dataset first when it is missing
#   tools/bench.sh install
#                         uninstall the module from the dataset and install it again, timed
#                         (install_on_existing_*); the dataset keeps its leads
set -euo pipefail
source "$(dirname "$0")/env.sh"

N=${N:-200000}
SEED=${SEED:-42}
BENCH_DB=${BENCH_DB:-crm_pipeline_optimizer_bench_$N}
[ -x "$PYTHON" ] && [ -f "$ODOO_CONF" ] || die "run 'make setup' first"
pg_ready || die "PostgreSQL is not running (run 'make setup')"

database_exists() {
    psql -lqt | cut -d'|' -f1 | grep -qw "$BENCH_DB"
}

build_dataset() {
    step "Building $BENCH_DB: $N leads, seed $SEED"
    dropdb --if-exists "$BENCH_DB"
    odoo_bin -d "$BENCH_DB" -i "$MODULE" --without-demo=all --stop-after-init --log-level=warn
    PYTHONPATH="$ODOO_SRC" "$PYTHON" "$PROJECT_DIR/tools/bench/generate.py" "$ODOO_CONF" "$BENCH_DB" \
        --leads "$N" --seed "$SEED"
    PYTHONPATH="$ODOO_SRC" "$PYTHON" "$PROJECT_DIR/tools/bench/generate.py" "$ODOO_CONF" "$BENCH_DB" \
        --verify
}

# A database loaded in bulk is vacuumed before it is measured, as any production database
# is: otherwise the first job to read each table (the PLS anchor, which runs first) pays
# for setting every row's visibility hints, and index-only scans visit the table.
vacuum_dataset() {
    step "Vacuuming $BENCH_DB"
    psql -q -d "$BENCH_DB" -c "VACUUM ANALYZE"
}

run_benchmarks() {
    database_exists || build_dataset
    step "Upgrading $MODULE in $BENCH_DB"
    odoo_bin -d "$BENCH_DB" -u "$MODULE" --stop-after-init --log-level=warn
    vacuum_dataset
    step "Benchmarks on $BENCH_DB"
    PYTHONPATH="$ODOO_SRC" "$PYTHON" "$PROJECT_DIR/tools/bench/run.py" "$ODOO_CONF" "$BENCH_DB" "$@"
}

install_on_existing() {
    database_exists || build_dataset
    step "Installing $MODULE again on $BENCH_DB"
    PYTHONPATH="$ODOO_SRC" "$PYTHON" "$PROJECT_DIR/tools/bench/install_on_existing.py" \
        "$ODOO_SRC/odoo-bin" "$ODOO_CONF" "$BENCH_DB"
}

case "${1:-run}" in
    data) build_dataset ;;
    run) shift; run_benchmarks "$@" ;;
    install) install_on_existing ;;
    *) die "usage: tools/bench.sh [data|run|install]" ;;
esac
