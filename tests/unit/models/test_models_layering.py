"""Layering: the models package imports nothing above it, and the model-side modules import at module level."""

import ast
import subprocess
import sys
from pathlib import Path

import glass_sm

PACKAGE = Path(glass_sm.__file__).resolve().parent
ABOVE_MODELS = ("glass_sm.training", "glass_sm.stages", "glass_sm.figures",
                "glass_sm.production", "glass_sm.evaluation", "glass_sm.interpret", "glass_sm.config")


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(module, at module level) for every import statement of a file (relative imports resolved)."""
    tree = ast.parse(path.read_text())
    package = ".".join(("glass_sm", *path.relative_to(PACKAGE).with_suffix("").parts[:-1]))
    top = {id(node) for node in tree.body}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, id(node) in top) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1], base]).strip(".")
            out += [(f"{base}.{alias.name}" if base == "glass_sm" else base, id(node) in top) for alias in node.names]
    return out


def _is_above(module: str) -> bool:
    return any(module == m or module.startswith(m + ".") for m in ABOVE_MODELS)


def test_models_import_nothing_above_them():
    files = sorted((PACKAGE / "models").glob("*.py"))
    assert len(files) >= 6
    bad = {f.name: m for f in files for m, _ in _imports(f) if _is_above(m)}
    assert not bad, bad


def test_model_side_modules_import_at_module_level():
    files = [*sorted((PACKAGE / "models").glob("*.py")), PACKAGE / "training.py", *sorted((PACKAGE / "config").glob("*.py"))]
    local = {f.name: m for f in files for m, at_top in _imports(f) if not at_top}
    assert not local, local


def test_importing_models_loads_nothing_above_them():
    code = "import sys, glass_sm.models; print('\\n'.join(m for m in sys.modules if m.startswith('glass_sm')))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert "glass_sm.models.checkpoint" in loaded
    assert not [m for m in loaded if _is_above(m)], loaded
