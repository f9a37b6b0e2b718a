#!/usr/bin/env bash
# Runs every check of the project and prints one summary line last:
#   1. linters: the pre-commit hooks (ruff, pylint-odoo, OCA's checks, prettier, eslint);
#   2. a throwaway database where the module installs with Odoo's test mode on
#      (at_install tests run inside the install, as on a real server);
#   3. pytest-odoo on that database over tests/ (post_install tests and browser tours in
#      headless Chromium) and over crm's and base_automation's own test suites, which must
#      pass with the module;
#   4. on a database with the CRM apps a company installs beside crm (Sales, Website, Events,
#      Live Chat, SMS, lead enrichment): their suites and Odoo's full-stack CRM performance
#      suite, with the module;
#   5. the addon's wheel: built with whool, its contents checked, installed with pip into a
#      fresh virtualenv beside Odoo, and the module installed from it;
#   6. on a second database with crm's demo data: uninstall, check nothing is left, reinstall;
#      then concurrency, Odoo with workers, and a read replica (a hot standby started here);
#   7. the databases are dropped.
# Exits non-zero on any failure; a missing dependency is a failure, never a skip.
set -uo pipefail
source "$(dirname "$0")/env.sh"

TEST_DB=${TEST_DB:-crm_pipeline_optimizer_test_$$}
CYCLE_DB=${TEST_DB}_demo
# Odoo suites that must still pass with the module installed.
# mail's (ODOO_SUITES="crm base_automation mail") adds 8–9 minutes and a browser tour of
# its own that times out on a loaded machine: run on demand.
ODOO_SUITES=${ODOO_SUITES:-crm base_automation}
# Tests of those suites that fail the same way on a database with crm alone (without this
# module) on the Odoo 18.0 snapshot we test on: left out by name, and said so in the output.
KNOWN_ODOO_FAILURES=(
    "mail mail/tests/test_mail_message.py::TestMailMessage::test_unlink_failure_message_notify_author"
)
LOG_DIR=$BUILD_DIR/test-logs
PYTEST_ARGS=${PYTEST_ARGS:-}
mkdir -p "$LOG_DIR"

check_prerequisites() {
    local missing=()
    [ -x "$PYTHON" ] || missing+=("the virtualenv $VENV (run: make setup)")
    odoo_src_ok || missing+=("Odoo 18.0 source in $ODOO_SRC (set ODOO_SRC or run: make setup)")
    [ -f "$ODOO_CONF" ] || missing+=("the Odoo configuration $ODOO_CONF (run: make setup)")
    pg_ready || missing+=("a running PostgreSQL server (run: make setup)")
    command -v chromium >/dev/null || missing+=("Debian's chromium, for browser tours (run: make setup)")
    command -v wkhtmltopdf >/dev/null || missing+=("wkhtmltopdf, for PDF reports (run: make setup)")
    command -v rtlcss >/dev/null || missing+=("rtlcss, for right-to-left stylesheets (run: make setup)")
    [ -x "$PROJECT_DIR/node_modules/.bin/eslint" ] || missing+=("the JavaScript linters in node_modules (run: make setup)")
    if [ -x "$PYTHON" ]; then
        "$PYTHON" -c "import websocket" 2>/dev/null \
            || missing+=("websocket-client in the virtualenv: without it Odoo skips every tour")
    fi
    if [ ${#missing[@]} -gt 0 ]; then
        printf 'MISSING: %s\n' "${missing[@]}" >&2
        echo "0 passed, 1 failed"
        exit 1
    fi
}

run_linters() {
    step "Linters: the pre-commit hooks (ruff, pylint-odoo, OCA's checks, prettier, eslint)"
    LINT_FAILED=0
    (cd "$PROJECT_DIR" && VENV=$VENV "$VENV/bin/pre-commit" run --all-files --show-diff-on-failure \
        --color=never) || LINT_FAILED=1
}

install_with_at_install_tests() {
    step "Installing $MODULE in $TEST_DB with at_install tests"
    local log=$LOG_DIR/install.log
    odoo_bin -d "$TEST_DB" -i "$MODULE" --test-enable --test-tags "at_install/$MODULE" \
        --stop-after-init --log-level=test --without-demo=all >"$log" 2>&1
    local rc=$?
    grep -E "ERROR|FAIL|CRITICAL|Traceback" "$log" | head -50
    local line
    line=$(grep -oE "[0-9]+ failed, [0-9]+ error\(s\) of [0-9]+ tests" "$log" | tail -1)
    local failed=0 errors=0 total=0
    if [ -n "$line" ]; then
        read -r failed errors total < <(echo "$line" | sed -E 's/([0-9]+) failed, ([0-9]+) error\(s\) of ([0-9]+) tests/\1 \2 \3/')
    fi
    AT_INSTALL_FAILED=$((failed + errors))
    AT_INSTALL_PASSED=$((total - failed - errors))
    if [ $rc -ne 0 ] && [ $AT_INSTALL_FAILED -eq 0 ]; then
        echo "Install failed (exit $rc); see $log" >&2
        AT_INSTALL_FAILED=1
    fi
    if [ "$total" -eq 0 ] && [ $rc -eq 0 ]; then
        echo "No at_install test ran during the install; see $log" >&2
        AT_INSTALL_FAILED=$((AT_INSTALL_FAILED + 1))
    fi
    echo "at_install: $AT_INSTALL_PASSED passed, $AT_INSTALL_FAILED failed (log: $log)"
}

# "passed failed skipped" of a JUnit XML report (pytest's --junitxml).
junit_counts() {
    "$PYTHON" - "$1" <<'EOF'
import sys
import xml.etree.ElementTree as ET
try:
    suite = ET.parse(sys.argv[1]).getroot()
except (OSError, ET.ParseError):
    print(0, 1, 0)
    raise SystemExit
suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
total, failures, errors, skipped = (int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped"))
print(total - failures - errors - skipped, failures + errors, skipped)
EOF
}

run_pytest() {
    step "pytest-odoo: post_install tests, browser tours and Odoo suites ($ODOO_SUITES)"
    local junit=$LOG_DIR/pytest.xml
    # Through the addons-path link, so that pytest-odoo imports the tests as odoo.addons.<module>.
    # shellcheck disable=SC2086
    local suites=() deselect=() known suite test
    for suite in $ODOO_SUITES; do
        suites+=("$(odoo_addon_dir "$suite")/tests")
    done
    for known in "${KNOWN_ODOO_FAILURES[@]}"; do
        read -r suite test <<<"$known"
        case " $ODOO_SUITES " in
            *" $suite "*)
                echo "left out (fails without this module too): $suite $test"
                deselect+=(--known-odoo-failure "$test")
                ;;
        esac
    done
    PYTHONPATH="$PROJECT_DIR/tools:$ODOO_SRC" "$VENV/bin/pytest" -p no:cacheprovider -p pytest_phase \
        "$ADDONS_DIR/$MODULE/tests" "${suites[@]}" \
        --odoo-config="$ODOO_CONF" --odoo-database="$TEST_DB" --odoo-http \
        --odoo-log-level=warn --junitxml="$junit" -q -p no:warnings "${deselect[@]}" $PYTEST_ARGS
    local rc=$?
    read -r PYTEST_PASSED PYTEST_FAILED PYTEST_SKIPPED < <(junit_counts "$junit")
    if [ $rc -ne 0 ] && [ "$PYTEST_FAILED" -eq 0 ]; then
        PYTEST_FAILED=1
    fi
}

# The CRM apps a company installs beside crm: their suites, and Odoo's full-stack CRM
# performance suite (test_crm_full, tag crm_performance: query counts of creating leads),
# must pass with the module, on a database of their own (the module's query-count tests
# count on crm alone). website_crm_partner_assign is installed (test_crm_full needs it) but
# its browser tours are not run: they fail on this machine with or without the module (its
# website editor tour).
PEER_APPS="sale_crm website_crm event_crm crm_iap_enrich crm_livechat crm_sms test_crm_full"
PEER_DB=${TEST_DB}_peers

run_peer_suites() {
    step "Beside the CRM apps: $PEER_APPS"
    local log=$LOG_DIR/peers-install.log junit=$LOG_DIR/peers.xml app suites=() rc
    PEERS_PASSED=0 PEERS_FAILED=1 PEERS_SKIPPED=0
    dropdb --if-exists "$PEER_DB" >/dev/null 2>&1
    if ! odoo_bin -d "$PEER_DB" -i "$MODULE,${PEER_APPS// /,}" --stop-after-init \
        --log-level=warn --without-demo=all >"$log" 2>&1; then
        echo "Installing the module beside the CRM apps failed; see $log" >&2
        return
    fi
    for app in $PEER_APPS; do
        suites+=("$(odoo_addon_dir "$app")/tests")
    done
    PYTHONPATH="$PROJECT_DIR/tools:$ODOO_SRC" "$VENV/bin/pytest" -p no:cacheprovider -p pytest_phase \
        "${suites[@]}" --odoo-config="$ODOO_CONF" --odoo-database="$PEER_DB" --odoo-http \
        --odoo-log-level=warn --junitxml="$junit" -q -p no:warnings
    rc=$?
    read -r PEERS_PASSED PEERS_FAILED PEERS_SKIPPED < <(junit_counts "$junit")
    if [ $rc -ne 0 ] && [ "$PEERS_FAILED" -eq 0 ]; then
        PEERS_FAILED=1
    fi
}

run_wheel_check() {
    step "The wheel: built with whool, its contents, installed with pip, installed by Odoo"
    local out line
    out=$(bash "$PROJECT_DIR/tools/wheel.sh" check 2>&1)
    echo "$out"
    line=$(echo "$out" | tail -1)
    WHEEL_PASSED=$(echo "$line" | sed -nE 's/^([0-9]+) passed, ([0-9]+) failed$/\1/p')
    WHEEL_FAILED=$(echo "$line" | sed -nE 's/^([0-9]+) passed, ([0-9]+) failed$/\2/p')
    if [ -z "$WHEEL_PASSED" ]; then
        WHEEL_PASSED=0 WHEEL_FAILED=1
    fi
}

run_i18n_check() {
    step "Translation template is current"
    if bash "$PROJECT_DIR/tools/i18n.sh" check "$TEST_DB"; then
        I18N_PASSED=1
    else
        I18N_FAILED=1
    fi
}

odoo_addon_dir() {
    local dir
    for dir in "$ODOO_SRC/addons/$1" "$ODOO_SRC/odoo/addons/$1"; do
        [ -d "$dir" ] && echo "$dir" && return
    done
    die "Odoo addon $1 not found in $ODOO_SRC"
}

run_install_cycle() {
    step "Install, uninstall and reinstall on a database with crm's demo data"
    local log=$LOG_DIR/install-cycle.log
    dropdb --if-exists "$CYCLE_DB" >/dev/null 2>&1
    if ! odoo_bin -d "$CYCLE_DB" -i "$MODULE" --stop-after-init --log-level=warn >"$log" 2>&1; then
        echo "Install with demo data failed; see $log" >&2
        CYCLE_FAILED=1
        return
    fi
    PYTHONPATH="$ODOO_SRC" "$PYTHON" "$PROJECT_DIR/tools/check_install_cycle.py" "$ODOO_CONF" "$CYCLE_DB" \
        2>>"$log" | tee -a "$log"
    local line
    line=$(tail -1 "$log")
    CYCLE_PASSED=$(echo "$line" | sed -nE 's/^([0-9]+) passed, ([0-9]+) failed$/\1/p')
    CYCLE_FAILED=$(echo "$line" | sed -nE 's/^([0-9]+) passed, ([0-9]+) failed$/\2/p')
    if [ -z "$CYCLE_PASSED" ]; then
        echo "The install cycle check did not finish; see $log" >&2
        CYCLE_PASSED=0 CYCLE_FAILED=1
    fi
}

# Runs one of the tools/check_*.py scripts, whose last line is "N passed, M failed", and
# sets <PREFIX>_PASSED and <PREFIX>_FAILED from it: run_check PREFIX TITLE SCRIPT LOG ARGS...
run_check() {
    local prefix=$1 title=$2 script=$3 log=$LOG_DIR/$4.log line passed failed
    shift 4
    step "$title"
    PYTHONPATH="$ODOO_SRC" "$PYTHON" "$PROJECT_DIR/tools/$script" "$@" 2>"$log.stderr" | tee "$log"
    line=$(tail -1 "$log")
    passed=$(echo "$line" | sed -nE 's/^([0-9]+) passed, ([0-9]+) failed$/\1/p')
    failed=$(echo "$line" | sed -nE 's/^([0-9]+) passed, ([0-9]+) failed$/\2/p')
    if [ -z "$passed" ]; then
        echo "$script did not finish; see $log.stderr" >&2
        passed=0 failed=1
    fi
    printf -v "${prefix}_PASSED" '%s' "$passed"
    printf -v "${prefix}_FAILED" '%s' "$failed"
}

run_concurrency_check() {
    run_check CONCURRENCY "Two cron workers and a salesperson at the same time (real transactions)" \
        check_concurrency.py concurrency "$ODOO_CONF" "$CYCLE_DB"
}

run_workers_check() {
    run_check WORKERS "Odoo with --workers 4 --max-cron-threads 2: kanban, dashboard and crons" \
        check_workers.py workers "$ODOO_SRC/odoo-bin" "$ODOO_CONF" "$CYCLE_DB"
}

run_replica_check() {
    run_check REPLICA "A read replica: a hot standby of PostgreSQL, Odoo with --db_replica_host" \
        check_replica.py replica "$ODOO_SRC/odoo-bin" "$ODOO_CONF" "$CYCLE_DB"
}

# The first released version of the module (the first submission that landed, a88fb54),
# kept as a git bundle so that the check does not depend on the clone's history.
FIRST_RELEASE_BUNDLE=$PROJECT_DIR/tools/first_release.bundle
UPGRADE_DB=${TEST_DB}_upgrade

run_upgrade_check() {
    step "Upgrade from the first released version with data"
    local log=$LOG_DIR/upgrade.log old=$BUILD_DIR/upgrade-from line
    UPGRADE_PASSED=0 UPGRADE_FAILED=1
    rm -rf "$old" && mkdir -p "$old/addons"
    if ! git clone -q --branch first-release "$FIRST_RELEASE_BUNDLE" "$old/addons/$MODULE"; then
        echo "Cannot read the first release from $FIRST_RELEASE_BUNDLE" >&2
        return
    fi
    sed "s|^addons_path = .*|addons_path = $(sed -n 's/^addons_path = \(.*\),[^,]*$/\1/p' "$ODOO_CONF"),$old/addons|" \
        "$ODOO_CONF" >"$old/odoo.conf"
    dropdb --if-exists "$UPGRADE_DB" >/dev/null 2>&1
    {
        "$PYTHON" "$ODOO_SRC/odoo-bin" -c "$old/odoo.conf" -d "$UPGRADE_DB" -i "$MODULE" \
            --stop-after-init --log-level=warn &&
            PYTHONPATH="$ODOO_SRC" "$PYTHON" "$PROJECT_DIR/tools/check_upgrade.py" prepare \
                "$old/odoo.conf" "$UPGRADE_DB" &&
            odoo_bin -d "$UPGRADE_DB" -u "$MODULE" --stop-after-init --log-level=warn
    } >"$log" 2>&1 || {
        echo "Installing the first release or upgrading from it failed; see $log" >&2
        return
    }
    PYTHONPATH="$ODOO_SRC" "$PYTHON" "$PROJECT_DIR/tools/check_upgrade.py" verify "$ODOO_CONF" \
        "$UPGRADE_DB" 2>>"$log" | tee -a "$log"
    line=$(tail -1 "$log")
    UPGRADE_PASSED=$(echo "$line" | sed -nE 's/^([0-9]+) passed, ([0-9]+) failed$/\1/p')
    UPGRADE_FAILED=$(echo "$line" | sed -nE 's/^([0-9]+) passed, ([0-9]+) failed$/\2/p')
    if [ -z "$UPGRADE_PASSED" ]; then
        echo "The upgrade check did not finish; see $log" >&2
        UPGRADE_PASSED=0 UPGRADE_FAILED=1
    fi
}

check_prerequisites
UPGRADE_PASSED=0 UPGRADE_FAILED=0
CONCURRENCY_PASSED=0 CONCURRENCY_FAILED=0 WORKERS_PASSED=0 WORKERS_FAILED=0 REPLICA_PASSED=0 REPLICA_FAILED=0
WHEEL_PASSED=0 WHEEL_FAILED=0 PEERS_PASSED=0 PEERS_FAILED=0 PEERS_SKIPPED=0 I18N_PASSED=0 I18N_FAILED=0 CYCLE_PASSED=0 CYCLE_FAILED=0 LINT_FAILED=0 AT_INSTALL_PASSED=0 AT_INSTALL_FAILED=0 PYTEST_PASSED=0 PYTEST_FAILED=0 PYTEST_SKIPPED=0
cleanup() {
    for db in "$TEST_DB" "$CYCLE_DB" "$UPGRADE_DB" "$PEER_DB"; do
        dropdb --if-exists "$db" >/dev/null 2>&1
        rm -rf "$BUILD_DIR/filestore/filestore/$db"
    done
}
trap cleanup EXIT

link_addon
run_linters
if [ "${1:-}" = "--lint-only" ]; then
    echo "linters failed: $LINT_FAILED"
    exit "$LINT_FAILED"
fi
dropdb --if-exists "$TEST_DB" >/dev/null 2>&1
install_with_at_install_tests
if [ "$AT_INSTALL_FAILED" -eq 0 ] || psql -lqt | cut -d'|' -f1 | grep -qw "$TEST_DB"; then
    run_pytest
    run_i18n_check
fi
run_peer_suites
run_wheel_check
run_install_cycle
run_upgrade_check
if [ "$CYCLE_FAILED" -eq 0 ]; then
    run_concurrency_check
    run_workers_check
    run_replica_check
else
    CONCURRENCY_FAILED=1 WORKERS_FAILED=1 REPLICA_FAILED=1
fi

# A skipped test is a test that did not run: it counts as a failure here.
failed=$((LINT_FAILED + AT_INSTALL_FAILED + PYTEST_FAILED + PYTEST_SKIPPED + PEERS_FAILED + PEERS_SKIPPED + WHEEL_FAILED + I18N_FAILED + CYCLE_FAILED + CONCURRENCY_FAILED + WORKERS_FAILED + REPLICA_FAILED + UPGRADE_FAILED))
passed=$((AT_INSTALL_PASSED + PYTEST_PASSED + PEERS_PASSED + WHEEL_PASSED + I18N_PASSED + CYCLE_PASSED + CONCURRENCY_PASSED + WORKERS_PASSED + REPLICA_PASSED + UPGRADE_PASSED))
echo "linters failed: $LINT_FAILED; at_install: $AT_INSTALL_PASSED passed, $AT_INSTALL_FAILED failed;" \
    "pytest (module, $ODOO_SUITES): $PYTEST_PASSED passed, $PYTEST_FAILED failed, $PYTEST_SKIPPED skipped;" \
    "CRM apps' suites and test_crm_full: $PEERS_PASSED passed, $PEERS_FAILED failed, $PEERS_SKIPPED skipped;" \
    "wheel: $WHEEL_PASSED passed, $WHEEL_FAILED failed;" \
    "translation template: $I18N_PASSED passed, $I18N_FAILED failed;" \
    "install cycle: $CYCLE_PASSED passed, $CYCLE_FAILED failed;" \
    "concurrency: $CONCURRENCY_PASSED passed, $CONCURRENCY_FAILED failed;" \
    "workers: $WORKERS_PASSED passed, $WORKERS_FAILED failed;" \
    "replica: $REPLICA_PASSED passed, $REPLICA_FAILED failed;" \
    "upgrade: $UPGRADE_PASSED passed, $UPGRADE_FAILED failed"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
