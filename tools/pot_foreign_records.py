"""Add to the module's translation template the terms it writes on other modules' records.

The module completes records of crm's data (the exit criteria of crm's stages). Odoo's
export only lists the records of the module's own external ids, so these terms would reach
no translator; a translation file may carry them under the other module's external id
(``model:crm.stage,exit_criteria:crm.stage_lead1``) and Odoo loads them from this module's
files at install, upgrade and when a language is activated.

Usage: pot_foreign_records.py TEMPLATE.pot MODULE_DIR MODULE
"""

import ast
import sys
from pathlib import Path

import polib
from lxml import etree


def translatable_fields(template):
    """{model: {field}} of the translated fields the export met on the module's records."""
    fields = {}
    for entry in template:
        for occurrence, _line in entry.occurrences:
            kind, _sep, rest = occurrence.partition(":")
            if kind == "model":
                model_field = rest.split(":", 1)[0]
                model, field = model_field.split(",")
                fields.setdefault(model, set()).add(field)
    return fields


def foreign_terms(module_dir, module, fields):
    """(occurrence, text) of the translated values the data files write on records whose
    external id belongs to another module, in the files' order."""
    manifest = ast.literal_eval((module_dir / "__manifest__.py").read_text())
    for data_file in manifest.get("data", []):
        if not data_file.endswith(".xml"):
            continue
        for record in etree.parse(str(module_dir / data_file)).iter("record"):
            xmlid, model = record.get("id", ""), record.get("model")
            if "." not in xmlid or xmlid.split(".", 1)[0] == module:
                continue
            for field in record.iterfind("field"):
                text = (field.text or "").strip()
                if text and field.get("name") in fields.get(model, ()):
                    yield f"model:{model},{field.get('name')}:{xmlid}", text


def main(pot_path, module_dir, module):
    module_dir = Path(module_dir)
    template = polib.pofile(pot_path, wrapwidth=78)
    entries = {entry.msgid: entry for entry in template}
    fields = translatable_fields(template)
    for occurrence, text in foreign_terms(module_dir, module, fields):
        entry = entries.get(text)
        if entry is None:
            entry = entries[text] = polib.POEntry(
                msgid=text, msgstr="", comment=f"module: {module}"
            )
            template.append(entry)
        if (occurrence, "") not in entry.occurrences:
            entry.occurrences.append((occurrence, ""))
    template.sort(key=lambda entry: entry.msgid)  # as Odoo's export and the OCA's checks
    template.save(pot_path)


if __name__ == "__main__":
    main(*sys.argv[1:4])
