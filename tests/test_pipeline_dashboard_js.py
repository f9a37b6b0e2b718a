import re

from odoo.modules.module import get_module_path
from odoo.tests import HttpCase, tagged

MODULE = "crm_pipeline_optimizer"
UNIT_TEST_FILE = "static/tests/pipeline_dashboard.test.js"


def hoot_hash(name):
    """The id HOOT gives a suite or a test from its full name (hoot's own hash)."""
    value = 0
    for char in name:
        value = ((value << 5) - value + ord(char)) & 0xFFFFFFFF
    return f"{value:08x}"


@tagged("ui", "dashboard", "post_install", "-at_install")
class TestPipelineDashboardUnit(HttpCase):
    """The dashboard's OWL component, unit-tested with HOOT in headless Chromium
    (static/tests/pipeline_dashboard.test.js): KPI bands, filters, drill-downs, the
    report button, charts left to right and right to left."""

    def test_dashboard_component(self):
        with open(f"{get_module_path(MODULE)}/{UNIT_TEST_FILE}", encoding="utf-8") as file:
            expected = len(re.findall(r"^test\(", file.read(), re.MULTILINE))
        browser_logger = f"{type(self).__module__}.{type(self).__name__}.{self._testMethodName}"
        with self.assertLogs(f"{browser_logger}.browser", "INFO") as logs:
            try:
                self.browser_js(
                    "/web/tests?headless&loglevel=2&preset=desktop&timeout=15000"
                    f"&suite={hoot_hash(f'@{MODULE}')}",
                    "",
                    "",
                    login="admin",
                    timeout=900,
                    success_signal="[HOOT] test suite succeeded",
                    error_checker=lambda message: "[HOOT]" not in message,
                )
            except AssertionError as error:
                # The browser's log is captured here: say which unit test failed and why.
                raise AssertionError(f"{error}\n" + "\n".join(logs.output[-40:])) from None
        ran = re.findall(r"\[HOOT\] passed (\d+) tests", "\n".join(logs.output))
        self.assertEqual(ran, [str(expected)], "every unit test of the file ran and passed")
