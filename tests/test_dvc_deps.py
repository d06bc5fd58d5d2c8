"""dvc.yaml: each stage depends on every repository file its command imports (transitively), and on no stale path.

A stage whose code changes must rerun: `dvc repro` decides that from `deps`.
Imports are read with `ast` (those inside functions too: they run when the
stage runs); importing ``a.b.c`` also runs ``a/__init__.py`` and ``a/b/__init__.py``.
"""

import ast
import functools
import os
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("runtime", "exporters", "pipeline")


def module_file(name: str) -> Path | None:
    base = ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _package_of(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] != "__init__" else parts[:-1])


def imports_of(path: Path) -> set[str]:
    """Repository modules ``path`` imports (absolute names)."""
    found = set()
    package = _package_of(path)
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            bases = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            bases = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in bases:
            if name.split(".")[0] in PACKAGES and module_file(name):
                parts = name.split(".")
                found.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return found


@functools.lru_cache(maxsize=None)
def closure(module: str) -> frozenset[Path]:
    """Files that running ``python -m module`` imports from the repository."""
    parts = module.split(".")
    todo = [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen or module_file(name) is None:
            continue
        seen.add(name)
        todo.extend(imports_of(module_file(name)))
    return frozenset(module_file(name) for name in seen)


def stages() -> list[tuple[str, str, list[str]]]:
    """(stage@item, module, deps) for every stage of dvc.yaml, foreach expanded."""
    out = []
    for name, stage in yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"].items():
        items, body = (stage["foreach"], stage["do"]) if "foreach" in stage else ([None], stage)
        for item in items:
            sub = (lambda s: s.replace("${item}", item)) if item else (lambda s: s)  # noqa: E731
            module = re.search(r"python -m ([\w.]+)", body["cmd"]).group(1)
            deps = [sub(d if isinstance(d, str) else next(iter(d))) for d in body.get("deps", [])]
            out.append((f"{name}@{item}" if item else name, module, deps))
    return out


def covered(path: Path, deps: list[str]) -> bool:
    rel = path.relative_to(ROOT).as_posix()
    return any(rel == d.rstrip("/") or rel.startswith(d.rstrip("/") + "/") for d in deps)


STAGES = stages()


@pytest.mark.parametrize("stage, module, deps", STAGES, ids=[s[0] for s in STAGES])
def test_every_imported_repository_file_is_a_dependency(stage, module, deps):
    files = closure(module)
    assert module_file(module) in files
    missing = sorted(p.relative_to(ROOT).as_posix() for p in files if not covered(p, deps))
    assert missing == [], f"{stage}: `{module}` imports these, but dvc.yaml's deps lack them: {missing}"


@pytest.mark.parametrize("stage, module, deps", STAGES, ids=[s[0] for s in STAGES])
def test_every_code_dependency_exists_and_is_imported(stage, module, deps):
    files = {p.relative_to(ROOT).as_posix() for p in closure(module)}
    for dep in deps:
        if dep.split("/")[0] not in PACKAGES:
            continue   # data: models, reports (outputs of earlier stages)
        assert (ROOT / dep).exists(), f"{stage}: dep {dep} does not exist"
        assert any(f == dep or f.startswith(dep.rstrip("/") + "/") for f in files), \
            f"{stage}: dep {dep} is code `{module}` never imports (a change there reruns the stage for nothing)"


def test_the_import_reader_sees_lazy_and_relative_imports():
    deps = {p.relative_to(ROOT).as_posix() for p in closure("pipeline.export")}
    assert "exporters/export.py" in deps                 # imported inside run()
    assert "exporters/atomic.py" in deps                 # `from .atomic import ...` in exporters/export.py
    assert "exporters/validation/parity.py" in deps      # `from .validation import parity as validate`
    assert "runtime/__init__.py" in deps and "pipeline/__init__.py" in deps


def test_locked_code_folders_count_only_their_source_files():
    """dvc hashes a code folder as its .dvcignore lets it see it; with bytecode caches in the hash
    (they come and go with whoever imported the code) a fresh clone finds every stage stale.
    Checked on dvc's own walk of each code folder the stages depend on (the tests have just
    imported them, so __pycache__ folders are there): it sees the tracked files and no others.
    Whether dvc.lock is fresh for the current code is `dvc status`'s question, not this one."""
    import subprocess

    from dvc.repo import Repo

    assert "__pycache__/" in (ROOT / ".dvcignore").read_text().split()
    lock = yaml.safe_load((ROOT / "dvc.lock").read_text())
    locked = {dep["path"]: dep for stage in lock["stages"].values() for dep in stage.get("deps", [])
              if dep["path"] in PACKAGES}
    assert locked, "no stage depends on a code folder"
    repo = Repo(str(ROOT))
    for path in sorted(locked):
        seen = sorted(os.path.relpath(os.path.join(root, f), ROOT) for root, _, files in
                      repo.dvcignore.walk(repo.fs, str(ROOT / path)) for f in files)
        tracked = subprocess.run(["git", "ls-files", path], cwd=ROOT, capture_output=True, text=True,
                                 check=True).stdout.split()
        untracked = subprocess.run(["git", "ls-files", "--others", "--exclude-standard", path], cwd=ROOT,
                                   capture_output=True, text=True, check=True).stdout.split()
        assert not [f for f in seen if "__pycache__" in f or f.endswith(".pyc")], path
        assert sorted(set(seen) - set(untracked)) == sorted(tracked), path
