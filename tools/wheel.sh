#!/usr/bin/env bash
# The addon as the OCA ships it: the wheel odoo-addon-crm_pipeline_optimizer, built with
# whool from the repository's files less the development ones (.gitattributes,
# export-ignore), checked, then installed with pip into a fresh virtualenv beside Odoo,
# where Odoo installs the module from it.
#   tools/wheel.sh build   -> dist/odoo_addon_crm_pipeline_optimizer-<version>-py3-none-any.whl
#   tools/wheel.sh check   -> build, check the contents, install it; last line "N passed, M failed"
set -uo pipefail
source "$(dirname "$0")/env.sh"

DIST_DIR=$PROJECT_DIR/dist
WHEEL_DB=${WHEEL_DB:-${MODULE}_wheel_$$}

build_wheel() {
    step "Building the wheel with whool"
    local stage
    stage=$(mktemp -d)
    mkdir -p "$stage/$MODULE" "$DIST_DIR"
    rm -f "$DIST_DIR"/odoo_addon_"$MODULE"-*.whl
    # The tracked files as they are in the work tree, less those marked export-ignore. The
    # stage is outside any git repository: whool then packages the whole directory.
    (cd "$PROJECT_DIR" && git ls-files -z | git check-attr -z --stdin export-ignore |
        "$PYTHON" -c '
import sys
fields = sys.stdin.buffer.read().split(b"\0")
for path, _attr, value in zip(fields[0::3], fields[1::3], fields[2::3]):
    if value != b"set":
        sys.stdout.buffer.write(path + b"\0")
' | xargs -0 cp --parents -t "$stage/$MODULE") || die "cannot stage the addon's files"
    "$VENV/bin/pip" wheel --quiet --no-deps --no-build-isolation --wheel-dir "$DIST_DIR" \
        "$stage/$MODULE" || die "whool could not build the wheel"
    rm -rf "$stage"
    WHEEL=$(ls "$DIST_DIR"/odoo_addon_"$MODULE"-*.whl)
    echo "$WHEEL"
}

# A fresh virtualenv beside Odoo: it sees Odoo's source and Odoo's Python dependencies (the
# project's virtualenv) through a .pth file. Odoo's own setup.py is not installed with pip:
# the source trees these machines get lack its setup/ scripts folder. Where it is (a clone
# of Odoo), `pip install -e <odoo>` does the same.
fresh_venv() {
    local venv=$1 site
    rm -rf "$venv"
    python3 -m venv "$venv" || return 1
    site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
    {
        echo "$ODOO_SRC"
        "$PYTHON" -c 'import sysconfig; print(sysconfig.get_path("purelib"))'
    } >"$site/odoo_beside.pth"
}

check_wheel() {
    local venv=$BUILD_DIR/wheel-venv log=$BUILD_DIR/test-logs/wheel.log addons_path
    local contents installed passed failed
    mkdir -p "$BUILD_DIR/test-logs"
    build_wheel >"$log" 2>&1 || { cat "$log"; echo "0 passed, 1 failed"; return 1; }
    contents=$("$PYTHON" "$PROJECT_DIR/tools/check_wheel.py" contents "$WHEEL" "$PROJECT_DIR")
    step "Installing the wheel with pip into a fresh virtualenv beside Odoo"
    # --no-deps: pip cannot see the Odoo beside it as a distribution; check_wheel.py checks
    # that the wheel's other requirements are met.
    if { fresh_venv "$venv" && "$venv/bin/pip" install --quiet --no-index --no-deps "$WHEEL"; } \
        >>"$log" 2>&1; then
        # Odoo's own addons only: the module must come from the wheel, not the checkout.
        addons_path="$ODOO_SRC/odoo/addons"
        [ -d "$ODOO_SRC/addons" ] && addons_path="$ODOO_SRC/addons,$addons_path"
        dropdb --if-exists "$WHEEL_DB" >/dev/null 2>&1
        "$venv/bin/python" "$ODOO_SRC/odoo-bin" -c "$ODOO_CONF" --addons-path="$addons_path" \
            -d "$WHEEL_DB" -i "$MODULE" --without-demo=all --stop-after-init --log-level=warn \
            >>"$log" 2>&1
        installed=$("$venv/bin/python" "$PROJECT_DIR/tools/check_wheel.py" installed "$venv" \
            "$ODOO_CONF" "$WHEEL_DB" "$addons_path" 2>>"$log")
        dropdb --if-exists "$WHEEL_DB" >/dev/null 2>&1
        rm -rf "$BUILD_DIR/filestore/filestore/$WHEEL_DB"
    else
        installed=$(printf 'FAIL the wheel installs with pip (see %s)\n0 passed, 1 failed' "$log")
    fi
    printf '%s\n%s\n' "$contents" "$installed" | grep -v -E '^[0-9]+ passed'
    read -r passed failed < <(printf '%s\n%s\n' "$contents" "$installed" |
        sed -nE 's/^([0-9]+) passed, ([0-9]+) failed$/\1 \2/p' |
        awk '{p += $1; f += $2} END {print p + 0, f + 0}')
    [ -n "$installed" ] || failed=$((failed + 1))
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}

case "${1:-build}" in
    build) build_wheel ;;
    check) check_wheel ;;
    *) die "usage: $0 build|check" ;;
esac
