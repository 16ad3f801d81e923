"""The layering of the code base: imports go only downwards, and a shared helper has one home.

    util  <-  data, models  <-  options  <-  train.py, test.py
    util  <-  evaluate.py (evaluation needs util only)
    scripts/ and datasets/ are tools on top, run as ``python -m scripts.NAME`` / ``python -m datasets.NAME``.

Read with ``ast`` (nothing is imported), so a break names the file, the line and the import.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECT_MODULES = {"util", "data", "models", "options", "scripts", "datasets", "train", "test", "evaluate"}
# Which project modules each layer may import (a package may always import itself).
ALLOWED = {
    "util": {"util"},
    "data": {"util", "data"},
    "models": {"util", "models"},
    "options": {"util", "data", "models", "options"},
    "evaluate": {"util"},
}
SKIPPED_DIRS = {".venv", ".git", "tests", "checkpoints", "results", "__pycache__"}
ATOMIC_WRITE_HOME = "util/fileio.py"
# Files allowed their own rename-over-the-target, with the reason.
ATOMIC_WRITE_EXCEPTIONS = {
    # Runs by path (scripts/setup_test_env.sh) and is loaded from its file (tests/conftest.py): cannot import util.
    "scripts/prepare_visdom_assets.py": "must not import the project",
}


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def python_files(*places: str) -> list[Path]:
    found = []
    for place in places:
        target = ROOT / place
        found += [target] if target.is_file() else sorted(target.rglob("*.py"))
    return [path for path in found if not SKIPPED_DIRS & set(path.relative_to(ROOT).parts)]


def package_of(path: Path) -> list[str]:
    """Dotted package of a file as a list: util/metrics.py -> ['util']; evaluate.py -> []."""
    return list(path.relative_to(ROOT).parent.parts)


def imported_modules(path: Path) -> Iterator[tuple[int, str]]:
    """(line, dotted module) of every import in the file, relative imports resolved; ``from data import x``
    also gives ``data.x`` (x may be a submodule)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = package_of(path)[: len(package_of(path)) - node.level + 1]
                base = ".".join([*package, *([base] if base else [])])
            yield node.lineno, base
            if base in PROJECT_MODULES:
                yield from ((node.lineno, f"{base}.{alias.name}") for alias in node.names)


def layer_of(path: Path) -> str:
    parts = path.relative_to(ROOT).parts
    return parts[0] if len(parts) > 1 else path.stem


@pytest.mark.parametrize("place", ["util", "data", "models", "options", "evaluate.py"])
def test_imports_go_only_downwards(place):
    broken = []
    for path in python_files(place):
        allowed = ALLOWED[layer_of(path)]
        for line, module in imported_modules(path):
            top = module.split(".")[0]
            if top in PROJECT_MODULES and top not in allowed:
                broken.append(f"{rel(path)}:{line} imports {module}; {layer_of(path)} may import only "
                              f"{', '.join(sorted(allowed))}")
    assert not broken, "layering broken (move the helper down into util instead):\n" + "\n".join(sorted(set(broken)))


def test_a_dataset_module_does_not_use_another_as_a_library():
    broken = []
    for path in sorted((ROOT / "data").glob("*_dataset.py")):
        if path.name == "base_dataset.py":
            continue
        for line, module in imported_modules(path):
            match = re.match(r"^data\.(\w+_dataset)\b", module)
            if match and match[1] not in ("base_dataset", path.stem):
                broken.append(f"{rel(path)}:{line} imports {module}")
    assert not broken, ("dataset modules import another dataset module; move the shared helper to "
                        "data/base_dataset.py:\n" + "\n".join(sorted(set(broken))))


def uses_sys_path(tree: ast.AST) -> list[int]:
    return [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Attribute) and node.attr == "path"
            and isinstance(node.value, ast.Name) and node.value.id == "sys"]


@pytest.mark.parametrize("place", ["scripts", "datasets"])
def test_tools_run_as_modules_without_patching_sys_path(place):
    broken = [f"{rel(path)}:{line} uses sys.path" for path in python_files(place)
              for line in uses_sys_path(ast.parse(path.read_text(encoding="utf-8")))]
    assert not broken, (f"run the tool as `python -m {place}.NAME` from the repository root instead of patching "
                        f"sys.path:\n" + "\n".join(broken))


def renames_over_a_file(tree: ast.AST) -> list[int]:
    """Lines calling os.replace / os.rename: the last step of a hand-made atomic write."""
    return [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute) and node.func.attr in ("replace", "rename")
            and isinstance(node.func.value, ast.Name) and node.func.value.id == "os"]


def test_one_atomic_write_implementation():
    found = {rel(path): lines for path in python_files(".")
             if (lines := renames_over_a_file(ast.parse(path.read_text(encoding="utf-8"))))}
    assert ATOMIC_WRITE_HOME in found, f"{ATOMIC_WRITE_HOME} no longer holds the atomic write"
    extra = [f"{name}:{line}" for name, lines in sorted(found.items()) for line in lines
             if name != ATOMIC_WRITE_HOME and name not in ATOMIC_WRITE_EXCEPTIONS]
    assert not extra, (f"atomic writes outside {ATOMIC_WRITE_HOME}; use util.fileio.atomic_write "
                       f"(or write_bytes_atomic / write_text_atomic) instead:\n" + "\n".join(extra))


@pytest.mark.parametrize("name, home", [
    ("DatasetError", "util/image_files.py"), ("list_image_files", "util/image_files.py"),
    ("index_mask_files", "util/image_files.py"), ("is_image_file", "util/image_files.py"),
    ("domain_letters", "util/image_files.py"), ("MASK_NAME", "util/image_files.py"),
    ("IMG_EXTENSIONS", "util/image_files.py"), ("pick_b_index", "data/base_dataset.py"),
    ("cpu_model_name", "util/machine.py"), ("atomic_write", "util/fileio.py"),
    ("EMPTY_SLOT", "util/masks.py"), ("MASK_THRESHOLD", "util/masks.py"),
])
def test_shared_helpers_are_defined_once(name, home):
    defined = []
    for path in python_files("util", "data", "models", "options", "scripts", "datasets", "train.py", "test.py",
                             "evaluate.py"):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            names = [node.name] if isinstance(node, (ast.FunctionDef, ast.ClassDef)) else []
            if isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names = [t.id for t in targets if isinstance(t, ast.Name)]
            if name in names:
                defined.append(rel(path))
    assert defined == [home], f"{name} is defined in {defined or 'no file'}; keep the one definition in {home}"


def explained_files() -> Iterator[Path]:
    """Code, docs and scripts a reader of the repository sees (not the tests, which may name such paths)."""
    for path in sorted(ROOT.rglob("*")):
        if path.suffix in {".py", ".md", ".sh"} and not SKIPPED_DIRS & set(path.relative_to(ROOT).parts):
            yield path


def test_the_repository_explains_itself():
    """No pointer to a document outside the repository, nor to a path of one machine."""
    outside = re.compile(r"\bSPEC\b|\.\./shared|/work/|/home/\w+|/root/|/tmp/pytest")
    found = [f"{rel(path)}:{number}: {line.strip()[:100]}" for path in explained_files()
             for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1) if outside.search(line)]
    assert not found, "explain it in docs/ (e.g. docs/method.md) instead:\n" + "\n".join(found)


def test_python_version_in_the_readme_matches_the_code():
    """The code uses Python 3.11 features (typing.Self); README and pyproject say so."""
    assert "Python 3.11+" in (ROOT / "README.md").read_text()
    assert 'requires-python = ">=3.11"' in (ROOT / "pyproject.toml").read_text()
