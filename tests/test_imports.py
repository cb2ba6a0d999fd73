"""The code's layout: the import contract in pyproject.toml (import-linter), and no import cycles."""

from __future__ import annotations

from pathlib import Path

import grimp
from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[1]


def test_the_import_contract_is_kept(monkeypatch):
    """pyproject.toml's [tool.importlinter] contracts: the stages import no window, service, cluster or
    training framework; the window, the service and batch are independent of each other."""
    monkeypatch.chdir(ROOT)
    assert lint_imports(config_filename="pyproject.toml", no_cache=True) == 0


def test_no_module_imports_one_that_imports_it_back():
    """Before: emolens.report.html -> report.behaviour -> (lazily) report.html."""
    graph = grimp.build_graph("emolens")
    cycles = sorted({tuple(sorted((module, imported)))
                     for module in graph.modules for imported in graph.find_modules_directly_imported_by(module)
                     if graph.chain_exists(importer=imported, imported=module)})
    assert cycles == []
