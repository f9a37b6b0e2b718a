"""Checks of the addon's wheel, each printed, then "N passed, M failed".

check_wheel.py contents WHEEL PROJECT_DIR
    what the wheel holds: its metadata, the manifest and every file the manifest loads,
    the static assets, the translations; none of the development files.
check_wheel.py installed VENV ODOO_CONF DATABASE ADDONS_PATH   (run with VENV's Python)
    Odoo found the module in the virtualenv's site-packages and installed it, and it
    works: a lead is scored.
"""

import ast
import subprocess
import sys
import zipfile
from email.parser import HeaderParser
from pathlib import Path

MODULE = "crm_pipeline_optimizer"
PREFIX = f"odoo/addons/{MODULE}/"
DEVELOPMENT_FILES = (
    ".ci/",
    ".gitattributes",
    ".gitignore",
    ".pre-commit-config.yaml",
    ".pylintrc",
    ".prettierrc.yml",
    ".prettierignore",
    "Makefile",
    ".eslintrc.json",
    "package.json",
    "package-lock.json",
    "pyproject.toml",
    "requirements-dev.txt",
    "ruff.toml",
    "tools/",
    "node_modules/",
)

results = []


def check(name, ok, detail=""):
    results.append(bool(ok))
    print(f"{'ok  ' if ok else 'FAIL'} {name}" + (f" ({detail})" if detail and not ok else ""))


def check_contents(wheel, project_dir):
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata_name = next(name for name in names if name.endswith(".dist-info/METADATA"))
        metadata = HeaderParser().parsestr(archive.read(metadata_name).decode())
        manifest = ast.literal_eval(archive.read(PREFIX + "__manifest__.py").decode())
    files = {name[len(PREFIX) :] for name in names if name.startswith(PREFIX)}
    check(
        "named odoo-addon-crm_pipeline_optimizer, versioned as the manifest",
        metadata["Name"] == f"odoo-addon-{MODULE}" and metadata["Version"] == manifest["version"],
        f"{metadata['Name']} {metadata['Version']}",
    )
    requires = set(metadata.get_all("Requires-Dist") or ())
    check(
        "requires Odoo 18.0 and phonenumbers",
        {"odoo==18.0.*", "phonenumbers"} <= requires,
        requires,
    )
    loaded = [path for key in ("data", "demo") for path in manifest.get(key, ())]
    missing = [path for path in loaded if path not in files]
    check(f"holds the {len(loaded)} data and demo files the manifest loads", not missing, missing)
    tracked = subprocess.run(
        ["git", "ls-files", "static", "i18n"],
        cwd=project_dir,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assets = [path for path in tracked if path.startswith("static/")]
    missing = [path for path in assets if path not in files]
    check(
        f"holds the {len(assets)} static files (assets, tours, icon, Apps page)",
        not missing,
        missing,
    )
    translations = [path for path in tracked if path.startswith("i18n/")]
    missing = [path for path in translations if path not in files]
    check(
        f"holds the {len(translations)} translation files",
        translations and not missing and any(path.endswith(".pot") for path in translations),
        missing,
    )
    python_files = [path for path in files if path.endswith(".py")]
    check(
        "holds the Python code, hooks and migrations",
        {"__init__.py", "hooks.py"} <= files
        and any(path.startswith("migrations/") for path in python_files),
        sorted(python_files)[:5],
    )
    development = sorted(
        path
        for path in files
        if any(path == dev or path.startswith(dev) for dev in DEVELOPMENT_FILES)
    )
    check(
        "holds none of the development files (tools, benchmarks, linters, CI)",
        not development,
        development,
    )


def check_installed(venv, conf, database, addons_path):
    from importlib import metadata

    import odoo
    from odoo.tools import config

    distribution = metadata.distribution(f"odoo-addon-{MODULE}")
    check(
        "pip installed the wheel in the virtualenv",
        Path(distribution.locate_file("")).resolve().is_relative_to(Path(venv).resolve()),
        distribution.locate_file(""),
    )
    unmet = []
    for requirement in distribution.requires or ():
        name, _, version = requirement.partition("==")
        if name == "odoo":
            met = odoo.release.version_info[:2] == (18, 0) and version == "18.0.*"
        else:
            try:
                met = bool(metadata.version(name))
            except metadata.PackageNotFoundError:
                met = False
        if not met:
            unmet.append(requirement)
    check("its requirements are met (Odoo 18.0 beside it, phonenumbers)", not unmet, unmet)

    config.parse_config(["-c", conf, "-d", database, f"--addons-path={addons_path}"])
    odoo.modules.module.initialize_sys_path()
    module_path = Path(odoo.modules.module.get_module_path(MODULE) or "")
    check(
        "Odoo finds the module in the virtualenv's site-packages",
        Path(venv).resolve() in module_path.resolve().parents,
        module_path,
    )
    registry = odoo.modules.registry.Registry(database)
    with registry.cursor() as cr:
        env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})
        state = env["ir.module.module"].search([("name", "=", MODULE)]).state
        check("the module installed from the wheel", state == "installed", state)
        lead = env["crm.lead"].create({"name": "From the wheel", "is_budget_confirmed": True})
        check("it scores a lead (budget confirmed: 30 points)", lead.score == 30, lead.score)
        cr.rollback()


def main():
    mode, *args = sys.argv[1:]
    if mode == "contents":
        check_contents(*args)
    else:
        check_installed(*args)
    print(f"{sum(results)} passed, {len(results) - sum(results)} failed")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
