"""The transport template builds, installs and passes the conformance kit.

The template (templates/kombu-transport-template) is built into a wheel
with this checkout's kombu-core and installed into a fresh virtual
environment, with pytest copied in; its own tests then run there, so the
template cannot drift from the core it documents.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
import shutil
import sys
from pathlib import Path

import pytest
from helpers import run

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "templates" / "kombu-transport-template"
#: What pytest needs in the fresh environment (copied from this one), and
#: the distributions whose metadata comes along.
PYTEST_MODULES = ("pytest", "_pytest", "pluggy", "iniconfig", "packaging", "py", "pygments",
                  "pytest_timeout")
PYTEST_DISTS = ("pytest", "pluggy", "iniconfig", "packaging", "pygments", "pytest-timeout")


def _copy_module(name: str, site: Path) -> None:
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.origin, f"{name} is not installed: run ./dev setup"
    origin = Path(spec.origin)
    if origin.name == "__init__.py":
        shutil.copytree(origin.parent, site / name,
                        ignore=shutil.ignore_patterns("__pycache__"))
    else:
        shutil.copy2(origin, site / origin.name)


def _copy_metadata(dist: str, site: Path) -> None:
    info = Path(str(importlib.metadata.distribution(dist)._path))  # type: ignore[attr-defined]
    shutil.copytree(info, site / info.name)


@pytest.mark.slow
def test_the_template_passes_the_kit_in_a_fresh_environment(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "-w", str(wheels), str(ROOT / "core"), str(TEMPLATE)], timeout=100)
    env = tmp_path / "env"
    run([sys.executable, "-m", "venv", "--without-pip", str(env)], timeout=60)
    python = env / "bin" / "python"
    site = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]
                    ).stdout.strip())
    for name in PYTEST_MODULES:
        _copy_module(name, site)
    for dist in PYTEST_DISTS:
        _copy_metadata(dist, site)
    run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
         "--no-deps", "--no-index", *map(str, sorted(wheels.glob("*.whl")))], timeout=100)
    project = tmp_path / "project"
    shutil.copytree(TEMPLATE, project, ignore=shutil.ignore_patterns("__pycache__", "src"))
    proc = run([str(python), "-m", "pytest", "-p", "no:cacheprovider",
                "-rs", "--kombu-wait=5"], cwd=str(project), timeout=120, check=False)
    out = proc.stdout
    assert proc.returncode == 0, f"{out}\n{proc.stderr}"
    assert str(site) in run([str(python), "-c", "import kombu, kombu_mytransport; "
                             "print(kombu.__file__, kombu_mytransport.__file__)"]).stdout
    summary = re.search(r"(\d+) passed, (\d+) skipped", out)
    assert summary and int(summary.group(1)) >= 30, out
    # Each capability the template does not declare is shown with its reason.
    assert "capability 'multiprocess'" in out and "the store lives in this process" in out
