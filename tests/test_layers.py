"""The layer rules hold: imports point down only, no cycle, and every module has a place.

The rules themselves are import-linter contracts in `.importlinter` (see
docs/architecture.md); import-linter (and grimp, which it is built on) read
every import statement, lazy ones inside functions included: a lazy import
that hides a cycle is still a cycle.
"""

import configparser
import os
import re
import shutil
import subprocess
import sys

import grimp

from conftest import REPO


def test_the_import_linter_contracts_are_kept():
    lint = shutil.which("lint-imports") or os.path.join(os.path.dirname(sys.executable), "lint-imports")
    result = subprocess.run([lint, "--config", str(REPO / ".importlinter"), "--no-cache"], cwd=REPO,
                            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout, result.stdout


def _graph():
    sys.path.insert(0, str(REPO))
    try:
        return grimp.build_graph("exmake")
    finally:
        sys.path.remove(str(REPO))


def test_every_module_has_a_layer():
    config = configparser.ConfigParser()
    config.read(REPO / ".importlinter")
    placed = set(re.split(r"[\s|:]+", config["importlinter:contract:layers"]["layers"].strip()))
    unplaced = {".".join(m.split(".")[:2]) for m in _graph().modules if m != "exmake"} - placed
    assert not unplaced, f"modules missing from the layers in .importlinter: {sorted(unplaced)}"


def test_no_module_is_part_of_an_import_cycle():
    """Also between a package and its own modules, which acyclic_siblings leaves alone."""
    graph = _graph()
    cycles = set()
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            back = graph.find_shortest_chain(importer=imported, imported=module)
            if back:
                cycles.add(" -> ".join((module,) + tuple(back)))
    assert not cycles, "import cycles:\n" + "\n".join(sorted(cycles))
