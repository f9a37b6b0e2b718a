# Shared settings for the project's scripts (sourced, not run).
# Every path can be overridden from the environment.

PROJECT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MODULE=crm_pipeline_optimizer
BUILD_DIR=${BUILD_DIR:-$PROJECT_DIR/.build}
VENV=${VENV:-$PROJECT_DIR/.venv}
PYTHON=$VENV/bin/python
# Odoo's source: $ODOO_SRC, else this per-user location (filled by `make setup`).
ODOO_DEFAULT_SRC=${XDG_DATA_HOME:-$HOME/.local/share}/odoo-18.0
ODOO_SRC=${ODOO_SRC:-$ODOO_DEFAULT_SRC}
ODOO_REPO_URL=${ODOO_REPO_URL:-https://github.com/odoo/odoo.git}
ADDONS_DIR=$BUILD_DIR/addons
ODOO_CONF=$BUILD_DIR/odoo.conf
DEMO_DB=${DEMO_DB:-crm_pipeline_optimizer_demo}
HTTP_PORT=${HTTP_PORT:-8069}

die() {
    printf 'ERROR: %s\n' "$*" >&2
    exit 1
}

step() {
    printf '==> %s\n' "$*"
}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "'$*' needs root and sudo is not available"
    fi
}

odoo_bin() {
    "$PYTHON" "$ODOO_SRC/odoo-bin" -c "$ODOO_CONF" "$@"
}

# Odoo's source is usable when it holds odoo-bin and the base addon of 18.0.
odoo_src_ok() {
    [ -f "$ODOO_SRC/odoo-bin" ] && [ -d "$ODOO_SRC/odoo/addons/base" ] \
        && grep -q "version_info = (18, 0" "$ODOO_SRC/odoo/release.py" 2>/dev/null
}

pg_ready() {
    pg_isready -q 2>/dev/null
}

# The addon as Odoo sees it: a directory named after the module whose entries link to the
# checkout's, hidden ones (.venv, .build, .git) left out. A link to the whole checkout would
# put .build inside itself: Odoo's translation export, which follows links, would never end;
# node_modules (the linters' packages) would be read by it too.
link_addon() {
    local target=$ADDONS_DIR/$MODULE entry
    [ -L "$target" ] && rm "$target"
    mkdir -p "$target"
    find "$target" -maxdepth 1 -type l -delete
    for entry in "$PROJECT_DIR"/*; do
        case $(basename "$entry") in
            node_modules | dist) continue ;; # the linters' packages, built wheels
        esac
        ln -sfn "$entry" "$target/$(basename "$entry")"
    done
}
