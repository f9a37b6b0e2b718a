#!/usr/bin/env bash
# Installs whatever is missing, builds the demo database and serves it.
#   tools/setup.sh             set up, then serve http://localhost:8069 (admin / admin)
#   tools/setup.sh --no-serve  set up only (CI)
# A second run only checks and upgrades the module: it is quick and safe.
set -euo pipefail
source "$(dirname "$0")/env.sh"

SERVE=1
[ "${1:-}" = "--no-serve" ] && SERVE=0

DEBIAN_PACKAGES=(postgresql postgresql-contrib libpq-dev libldap2-dev libsasl2-dev
    build-essential python3-dev python3-venv chromium wkhtmltopdf poppler-utils)
# Tools that may come from elsewhere than Debian (Node.js's own npm, for one): the Debian
# package is installed only when the command is missing.
declare -A DEBIAN_PACKAGE_FOR_COMMAND=([npm]=npm [git]=git)

install_debian_packages() {
    local missing=()
    for pkg in "${DEBIAN_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
    done
    for cmd in "${!DEBIAN_PACKAGE_FOR_COMMAND[@]}"; do
        command -v "$cmd" >/dev/null || missing+=("${DEBIAN_PACKAGE_FOR_COMMAND[$cmd]}")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        return
    fi
    command -v apt-get >/dev/null || die "missing system packages (${missing[*]}) and no apt-get to install them"
    step "Installing Debian packages: ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
}

start_postgresql() {
    if ! pg_ready; then
        step "Starting PostgreSQL"
        local version
        version=$(pg_lsclusters -h 2>/dev/null | awk 'NR==1 {print $1}')
        [ -n "$version" ] || die "no PostgreSQL cluster found (pg_lsclusters lists none)"
        as_root pg_ctlcluster "$version" main start
        for _ in $(seq 1 30); do pg_ready && break; sleep 1; done
        pg_ready || die "PostgreSQL did not start"
    fi
    local user
    user=$(id -un)
    if ! as_root su postgres -c "psql -tAc \"SELECT 1 FROM pg_roles WHERE rolname = '$user'\"" | grep -q 1; then
        step "Creating PostgreSQL role $user"
        as_root su postgres -c "createuser --superuser '$user'"
    fi
}

install_rtlcss() {
    command -v rtlcss >/dev/null && return
    step "Installing rtlcss (right-to-left stylesheets)"
    as_root npm install -g --silent rtlcss
    command -v rtlcss >/dev/null || die "rtlcss was installed but is not on PATH"
}

# The JavaScript and XML linters (ESLint with Odoo's rules, Prettier and its XML plugin),
# at the versions package-lock.json pins, in node_modules.
install_node_linters() {
    step "Installing the JavaScript and XML linters (npm ci)"
    (cd "$PROJECT_DIR" && npm ci --silent --no-audit --no-fund) || die "npm ci failed"
}

find_odoo_source() {
    if odoo_src_ok; then
        return
    fi
    if [ -e "$ODOO_SRC" ] && [ -n "$(ls -A "$ODOO_SRC" 2>/dev/null)" ]; then
        die "$ODOO_SRC exists but is not an Odoo 18.0 source tree (set ODOO_SRC to one)"
    fi
    step "Cloning Odoo 18.0 into $ODOO_SRC (shallow)"
    mkdir -p "$(dirname "$ODOO_SRC")"
    git clone --depth 1 --branch 18.0 "$ODOO_REPO_URL" "$ODOO_SRC" \
        || die "could not clone Odoo 18.0; set ODOO_SRC to an Odoo 18.0 source tree"
    odoo_src_ok || die "$ODOO_SRC does not hold Odoo 18.0 after cloning"
}

create_virtualenv() {
    local stamp=$VENV/.requirements.sha256
    local wanted
    wanted=$(sha256sum "$PROJECT_DIR/requirements-dev.txt" | cut -d' ' -f1)
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then
        return
    fi
    step "Creating the virtualenv $VENV"
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    mkdir -p "$BUILD_DIR"
    # Old sdists (python-ldap, psycopg2) still build with setuptools < 81. The variable replaces
    # pip.conf's constraint setting, so the machine's own constraints are named again.
    local constraints=$BUILD_DIR/pip-constraints.txt
    echo "setuptools<81" >"$constraints"
    [ -f /etc/xdg/pip/constraints.txt ] && echo "-c /etc/xdg/pip/constraints.txt" >>"$constraints"
    PIP_CONSTRAINT=$constraints "$VENV/bin/pip" install -q --upgrade pip wheel "setuptools<81"
    PIP_CONSTRAINT=$constraints "$VENV/bin/pip" install -q -r "$PROJECT_DIR/requirements-dev.txt"
    echo "$wanted" >"$stamp"
}

write_odoo_config() {
    # Odoo finds an addon by its directory name; the checkout may be named anything.
    link_addon
    local addons_path=$ODOO_SRC/odoo/addons
    [ -d "$ODOO_SRC/addons" ] && addons_path=$ODOO_SRC/addons,$addons_path
    cat >"$ODOO_CONF" <<EOF
[options]
addons_path = $addons_path,$ADDONS_DIR
data_dir = $BUILD_DIR/filestore
http_port = $HTTP_PORT
admin_passwd = admin
list_db = True
EOF
}

build_demo_database() {
    if psql -lqt | cut -d'|' -f1 | grep -qw "$DEMO_DB"; then
        step "Upgrading $MODULE in $DEMO_DB"
        odoo_bin -d "$DEMO_DB" -u "$MODULE" --stop-after-init --log-level=warn
    else
        step "Creating the demo database $DEMO_DB (with demo data)"
        odoo_bin -d "$DEMO_DB" -i "$MODULE" --stop-after-init --log-level=warn
    fi
}

install_debian_packages
start_postgresql
install_rtlcss
install_node_linters
find_odoo_source
create_virtualenv
write_odoo_config
build_demo_database

if [ "$SERVE" -eq 1 ]; then
    step "Serving $DEMO_DB on http://localhost:$HTTP_PORT (login admin, password admin; Ctrl+C stops)"
    exec "$PYTHON" "$ODOO_SRC/odoo-bin" -c "$ODOO_CONF" -d "$DEMO_DB" --db-filter="^$DEMO_DB\$"
fi
step "Setup done"
