"""Rule plugins: a real entry point (a ``*.dist-info`` folder on sys.path), a broken plugin, and
``load_plugin`` on a file or a module; plugin rules pass :func:`fwp.rules.testing.run_rule_checks`.
"""

from __future__ import annotations

import sys
import textwrap
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from fwp.rules import ENTRY_POINT_GROUP, get_rule, get_spec, list_rules, load_plugin
from fwp.rules import testing as rt
from fwp.rules.registry import _REGISTRY, load_entry_point_plugins

PLUGIN_SOURCE = '''
"""A throwaway fwp rule plugin written by tests/rules/test_plugins.py."""

import torch

from fwp.rules import LearningRule, register_rule
from fwp.rules.base import check_sequence_inputs, frames_from_updates


@register_rule("{name}", description="plugin: W += sigmoid(lr) tanh(v) softmax(k)^T")
class PluginRule(LearningRule):
    """A Hebbian rule with tanh values and a fast path of its own."""

    family = "plugin-hebbian"
    has_fast_path = True

    def __init__(self, scale: float = 1.0) -> None:
        self.scale = scale

    def activate(self, key_logits, value_logits, lr_logits):
        return (torch.softmax(key_logits, -1), torch.tanh(value_logits),
                torch.sigmoid(lr_logits))

    def step(self, W, k, v, lr):
        return W + self.scale * torch.einsum("bch,bcd->bchd", lr * v, k)

    def paint(self, K, V, LR, W0=None, frames=False):
        check_sequence_inputs(self, K, V, LR, W0)
        updates = self.scale * torch.einsum("bcth,bctd->tbchd", LR * V, K)
        if frames:
            return frames_from_updates(updates, W0)
        W = updates.sum(0)
        return W if W0 is None else W + W0


def register_variants():
    """An entry point may also name a callable that registers rules."""
    register_rule("{name}_x3", scale=3.0, description="three times stronger")(PluginRule)
'''


@dataclass
class Plugins:
    """Writes plugin modules and an installed distribution's metadata into a folder on sys.path."""

    root: Path
    tag: str

    def module(self, stem: str, source: str) -> str:
        """Write ``{stem}_{tag}.py``; return its module name."""
        name = f"{stem}_{self.tag}"
        (self.root / f"{name}.py").write_text(textwrap.dedent(source))
        return name

    def distribution(self, dist: str, entry_points: dict[str, str]) -> None:
        """Install ``dist`` (a dist-info folder) with entry points in the ``fwp.rules`` group.

        The folder is ``{dist}_{tag}-0.1.dist-info``: importlib.metadata takes the name from the
        folder up to the first "-" and lists one distribution per name, so the name has none.
        """
        name = f"{dist}_{self.tag}".replace("-", "_")
        info = self.root / f"{name}-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
        lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
        (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{lines}")


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Plugins]:
    """A folder on sys.path for plugins; the registry and sys.modules are restored afterwards."""
    load_entry_point_plugins()  # the lazy first load happens before the test's plugins exist
    registry_before = dict(_REGISTRY)
    modules_before = set(sys.modules)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield Plugins(tmp_path, uuid.uuid4().hex[:8])
    for name in set(sys.modules) - modules_before:
        module_file = getattr(sys.modules[name], "__file__", None) or ""
        if module_file.startswith(str(tmp_path)) or name.startswith("fwp_plugin_"):
            del sys.modules[name]
    _REGISTRY.clear()
    _REGISTRY.update(registry_before)


def _load_entry_points() -> list[warnings.WarningMessage]:
    """Reload every entry point; return the plugin warnings it gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_entry_point_plugins(force=True)
    return [w for w in caught if issubclass(w.category, RuntimeWarning)]


def test_an_entry_point_plugin_is_listed_and_passes_the_rule_checks(plugins: Plugins) -> None:
    name = f"plug_{plugins.tag}"
    module = plugins.module("fwp_test_plugin", PLUGIN_SOURCE.replace("{name}", name))
    plugins.distribution(
        "fwp-test-plugin", {name: module, f"{name}_variants": f"{module}:register_variants"}
    )
    assert name not in {s.name for s in list_rules()}

    assert _load_entry_points() == []

    spec = get_spec(name)
    assert spec.origin == f"entry point {name} ({module})"
    assert spec.family == "plugin-hebbian" and spec.has_fast_path
    assert spec.description == "plugin: W += sigmoid(lr) tanh(v) softmax(k)^T"
    variant = get_spec(f"{name}_x3")
    assert variant.origin == f"entry point {name}_variants ({module}:register_variants)"
    assert get_rule(f"{name}_x3").scale == 3.0
    listed = {s.name: s for s in list_rules(f"plug_{plugins.tag}*")}
    assert set(listed) == {name, f"{name}_x3"}
    assert "delta" in {s.name for s in list_rules()}, "built-ins stay registered"

    ran = rt.run_rule_checks(name, max_examples=10)
    assert {"fast_path_matches_scan", "zero_lr_identity", "frames_consistent"} <= set(ran)
    rt.run_rule_checks(get_rule(f"{name}_x3"), max_examples=5, dtypes=[torch.float64])


def test_a_broken_plugin_gives_one_warning_and_the_rest_keeps_working(plugins: Plugins) -> None:
    good = f"good_{plugins.tag}"
    good_module = plugins.module("fwp_test_good", PLUGIN_SOURCE.replace("{name}", good))
    broken_module = plugins.module(
        "fwp_test_broken", 'raise RuntimeError("this plugin is broken on purpose")\n'
    )
    plugins.distribution("fwp-test-broken", {"broken_one": broken_module})
    plugins.distribution("fwp-test-good", {good: good_module})

    caught = _load_entry_points()

    assert len(caught) == 1, [str(w.message) for w in caught]
    message = str(caught[0].message)
    assert "'broken_one'" in message and broken_module in message
    assert "RuntimeError: this plugin is broken on purpose" in message
    assert "skipped" in message
    assert get_spec(good).origin.startswith("entry point")
    assert get_rule("delta").name == "delta"
    rt.run_check(good, "fast_path_matches_scan", max_examples=5)


def test_a_plugin_that_takes_a_built_in_name_is_refused_with_both_origins(
    plugins: Plugins,
) -> None:
    module = plugins.module("fwp_test_clash", PLUGIN_SOURCE.replace("{name}", "delta"))
    plugins.distribution("fwp-test-clash", {"clash": module})

    caught = _load_entry_points()

    assert len(caught) == 1
    message = str(caught[0].message)
    assert "'clash'" in message and "already registered by built-in" in message
    assert "entry point clash" in message
    assert get_spec("delta").origin == "built-in"


def test_load_plugin_from_a_file(plugins: Plugins) -> None:
    name = f"file_{plugins.tag}"
    path = plugins.root / "sub" / f"my_rules_{plugins.tag}.py"
    path.parent.mkdir()
    path.write_text(PLUGIN_SOURCE.replace("{name}", name))

    load_plugin(str(path))
    load_plugin(str(path))  # a second load is a no-op, not a duplicate-name error

    spec = get_spec(name)
    assert spec.origin == f"module {path.name}"
    assert get_rule(f"{name}").has_fast_path
    rt.run_check(name, "fast_path_matches_scan", max_examples=5)


def test_load_plugin_from_a_module_name(plugins: Plugins) -> None:
    name = f"mod_{plugins.tag}"
    module = plugins.module("fwp_test_module", PLUGIN_SOURCE.replace("{name}", name))
    load_plugin(module)
    assert get_spec(name).origin == f"module {module}"


def test_load_plugin_errors_are_value_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        load_plugin(str(tmp_path / "missing.py"))
    with pytest.raises(ValueError, match=r"cannot be imported.*dotted module name"):
        load_plugin("no_such_module_for_fwp_tests")


def test_a_plugin_file_that_fails_leaves_no_half_imported_module(plugins: Plugins) -> None:
    path = plugins.root / f"bad_rules_{plugins.tag}.py"
    path.write_text("raise ImportError('missing dependency')\n")
    with pytest.raises(ImportError, match="missing dependency"):
        load_plugin(str(path))
    assert f"fwp_plugin_bad_rules_{plugins.tag}" not in sys.modules


def test_fwp_rules_lists_entry_point_and_file_plugins(plugins: Plugins) -> None:
    from click.testing import CliRunner

    from fwp.cli.main import cli

    name = f"cli_{plugins.tag}"
    module = plugins.module("fwp_test_cli", PLUGIN_SOURCE.replace("{name}", name))
    plugins.distribution("fwp_test_cli", {name: module})
    assert _load_entry_points() == []
    path = plugins.root / f"cli_file_rules_{plugins.tag}.py"
    path.write_text(PLUGIN_SOURCE.replace("{name}", f"clifile_{plugins.tag}"))

    listed = CliRunner().invoke(cli, ["rules"])
    assert listed.exit_code == 0, listed.output
    row = next(line for line in listed.output.splitlines() if line.startswith(name + " "))
    assert "plugin-hebbian" in row and f"entry point {name} ({module})" in row
    assert any(line.startswith("delta ") for line in listed.output.splitlines())

    with_file = CliRunner().invoke(cli, ["--plugin", str(path), "rules", "clifile_*"])
    assert with_file.exit_code == 0, with_file.output
    assert f"clifile_{plugins.tag}" in with_file.output
    assert f"module {path.name}" in with_file.output

    none = CliRunner().invoke(cli, ["rules", "no_such_rule_*"])
    assert none.exit_code != 0 and "no registered rule matches" in none.output
