"""Packaging: the licence pyproject.toml names, py.typed markers, and __version__ from the installed metadata."""

import tomllib
from importlib import metadata
from pathlib import Path

import exporters
import runtime
from runtime import version

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_license_file_is_the_apache_2_licence_pyproject_names():
    assert PYPROJECT["project"]["license"] == "Apache-2.0"     # an SPDX expression (PEP 639)
    assert PYPROJECT["project"]["license-files"] == ["LICENSE"]
    assert not [c for c in PYPROJECT["project"]["classifiers"] if c.startswith("License ::")]
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text[:200] and "Version 2.0, January 2004" in text[:200]
    assert "END OF TERMS AND CONDITIONS" in text


def test_every_package_is_marked_typed_and_ships_the_marker():
    for package in ("runtime", "exporters", "pipeline"):
        assert (ROOT / package / "py.typed").is_file(), package
    assert "py.typed" in PYPROJECT["tool"]["setuptools"]["package-data"]["*"]


def test_version_comes_from_the_installed_distribution():
    assert runtime.__version__ == metadata.version("rnnx")
    assert getattr(exporters, "__version__", runtime.__version__) == runtime.__version__   # one distribution
    assert runtime.__version__ == PYPROJECT["project"]["version"], \
        "the installed metadata is stale: reinstall rnnx (pip install -e .) after changing its version"
    assert PYPROJECT["project"]["version"] not in (ROOT / "runtime" / "version.py").read_text()   # not hard-coded


def test_version_is_unknown_when_not_installed():
    assert version.installed_version("rnnx-not-installed-anywhere") == "unknown"


def test_the_build_prints_no_deprecation_warnings(tmp_path):
    """`pip install -e .` once printed ~300 lines of setuptools deprecations (a licence table, licence classifiers)."""
    import shutil
    import subprocess
    import sys

    src = tmp_path / "src"   # a copy of what the build reads, so the build folder stays out of the checkout
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    for package in ("runtime", "exporters", "pipeline"):
        shutil.copytree(ROOT / package, src / package, ignore=shutil.ignore_patterns("__pycache__"))
    run = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-v",
                          "-w", str(tmp_path / "dist"), str(src)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    assert list((tmp_path / "dist").glob("rnnx-*.whl"))
    assert "running bdist_wheel" in run.stdout + run.stderr     # -v shows the build backend's own lines
    assert "deprecat" not in (run.stdout + run.stderr).lower(), (run.stdout + run.stderr)[:3000]
