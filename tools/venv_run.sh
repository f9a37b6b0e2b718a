#!/usr/bin/env bash
# Runs one of the virtualenv's commands (for pre-commit's hooks): tools/venv_run.sh ruff check
source "$(dirname "$0")/env.sh"
exec "$VENV/bin/$1" "${@:2}"
