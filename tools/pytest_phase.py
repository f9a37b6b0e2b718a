"""pytest plugin for the module's test run (tools/test.sh loads it with ``-p``).

* Leaves out the module's own tests that already ran inside its install: Odoo runs
  ``at_install`` tests while it installs the module, pytest runs the ``post_install`` ones
  afterwards. Left-out tests are reported as deselected, not skipped, since they did run.
* Imports the tests as ``odoo.addons.crm_pipeline_optimizer.tests…`` whatever the
  checkout's directory is called (pytest-odoo names the package after the directory).
* ``--known-odoo-failure addon/tests/file.py::Class::test`` leaves out one test of an Odoo
  suite that fails without this module too (reported as deselected, and printed by the
  test command).
"""

import logging
import os
from pathlib import Path

import _pytest.pathlib

MODULE = "crm_pipeline_optimizer"
PROJECT_DIR = Path(__file__).resolve().parent.parent

# pytest-odoo imports Odoo's test framework before it turns test mode on, and Odoo logs that
# import as an error with a stack trace: noise, not a failure.
logging.getLogger("odoo.tests.common").addFilter(
    lambda record: not str(record.msg).startswith("Importing test framework")
)


def pytest_addoption(parser):
    parser.addoption("--known-odoo-failure", action="append", default=[])


def pytest_sessionstart(session):
    resolve = _pytest.pathlib.resolve_pkg_root_and_module_name
    checkout_package = "odoo.addons." + PROJECT_DIR.name

    def resolve_as_addon(path, **kwargs):
        pkg_root, module_name = resolve(path, **kwargs)
        inside_checkout = Path(os.path.realpath(path)).is_relative_to(PROJECT_DIR)
        if inside_checkout and PROJECT_DIR.name != MODULE:
            for prefix in (checkout_package, PROJECT_DIR.name):
                if module_name == prefix or module_name.startswith(prefix + "."):
                    module_name = "odoo.addons." + MODULE + module_name[len(prefix) :]
                    break
        return pkg_root, module_name

    _pytest.pathlib.resolve_pkg_root_and_module_name = resolve_as_addon


def pytest_collection_modifyitems(config, items):
    known = tuple("/" + name for name in config.getoption("known_odoo_failure"))
    kept, left_out = [], []
    for item in items:
        tags = getattr(getattr(item, "cls", None), "test_tags", None) or set()
        ours = Path(os.path.realpath(item.path)).is_relative_to(PROJECT_DIR)
        ran_at_install = ours and "at_install" in tags
        (left_out if ran_at_install or item.nodeid.endswith(known) else kept).append(item)
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = kept
