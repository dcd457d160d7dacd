"""Rule plugins a run was trained with: recorded in its configuration (``run.plugins``) and
loaded again when the run is resumed, painted or measured.

A record is a module name (``my_package.rules``: installed code, imported by name) or an absolute
file path with the sha256 of its content (``/home/me/cov_rule.py#sha256=...``). A recorded file
is loaded again only when it is still at that absolute path with the same content, so a run
directory received from someone else cannot make fwp execute a file of its own: a plugin runs
only when the user loaded it (``--plugin``) or loaded that very file before, on this machine.
"""

from __future__ import annotations

import hashlib
import sys
import warnings
from collections.abc import Iterable
from pathlib import Path

from fwp.rules import list_rules, load_plugin

_HASH_MARK = "#sha256="

#: records of the plugins loaded in this process, in load order
_LOADED: list[str] = []
#: the rules each loaded plugin registered
_RULES_OF: dict[str, set[str]] = {}


def _registered() -> set[str]:
    return {spec.name for spec in list_rules()}


def _file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def plugin_record(spec: str) -> str:
    """The record of a plugin given as a module name or a ``.py`` file."""
    if spec.endswith(".py"):
        path = Path(spec).resolve()
        return f"{path}{_HASH_MARK}{_file_hash(path)}"
    return spec


def load_plugins(specs: Iterable[str]) -> list[str]:
    """Import plugins (module names or ``.py`` files) and remember their records."""
    records = []
    for spec in specs:
        before = _registered()
        load_plugin(spec)
        record = plugin_record(spec)
        if record not in _LOADED:
            _LOADED.append(record)
        _RULES_OF.setdefault(record, set()).update(_registered() - before)
        records.append(record)
    return records


def plugins_of_rule(rule: str) -> list[str]:
    """Records of the loaded plugins that registered ``rule`` (what a run of it records)."""
    return [record for record in _LOADED if rule in _RULES_OF.get(record, ())]


def load_recorded_plugins(records: Iterable[str], where: str, announce: bool = True) -> None:
    """Load the plugins a run recorded, saying so; a file that moved or changed is not loaded
    (a warning says how to load it by hand with ``--plugin``)."""
    for record in records:
        if record in _LOADED:
            continue
        path_text, mark, digest = record.partition(_HASH_MARK)
        if not mark:
            if announce:
                print(f"fwp: importing plugin module {record} recorded in {where}", file=sys.stderr)
            load_plugins([record])
            continue
        path = Path(path_text)
        if not path.is_absolute() or not path.is_file() or _file_hash(path) != digest:
            state = "changed" if path.is_file() else "is missing"
            warnings.warn(
                f"{where} was trained with the rule plugin {path}, which {state}; not loading "
                f"it. Load a plugin explicitly with `fwp --plugin FILE_OR_MODULE ...`",
                stacklevel=2,
            )
            continue
        if announce:
            print(f"fwp: loading plugin {path} recorded in {where}", file=sys.stderr)
        load_plugins([str(path)])
