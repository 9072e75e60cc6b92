"""The README's recipes for installing Celery beside kombu-core, each in a new
virtual environment: pip with the placeholder ``kombu`` distribution, uv with
``--excludes`` and with ``exclude-dependencies``, and what ``import kombu``
says when kombu 5.x's files share kombu-core's folder.

Workspace wheels (and the placeholder) are built once per session; Celery
and its dependencies come from the package index (or pip's cache).  Without
the index these tests skip outside CI and fail under CI.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import uuid
from pathlib import Path

import pytest
from helpers import run, under_ci
from helpers.celerycluster import forget_redis_names, rabbitmqctl
from helpers.celeryproc import CeleryProcess

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PLACEHOLDER = ROOT / "compat" / "kombu-placeholder"
CONSTRAINTS = PLACEHOLDER / "constraints.txt"
WORKSPACE = ["core", "plugins/kombu-pyamqp", "plugins/kombu-redis", "plugins/kombu-memory"]
CELERY = "celery[redis]==5.7.*"
REDIS_URL = "redis://127.0.0.1:6379/8"
INDEX_TIMEOUT = 240.0


def _unreachable(what: str, proc: subprocess.CompletedProcess[str]) -> None:
    message = (f"{what} failed (is the package index reachable?): exit {proc.returncode}\n"
               f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    if under_ci():
        raise AssertionError(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The workspace's wheels and the placeholder's, built from the checkout once."""
    out = tmp_path_factory.mktemp("celery-wheels")
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "-w", str(out), *(str(ROOT / d) for d in WORKSPACE), str(PLACEHOLDER)], timeout=120)
    names = sorted(p.name for p in out.glob("*.whl"))
    assert any(n.startswith("kombu-5.7.999+core-") for n in names), names
    return out


@pytest.fixture(scope="session")
def real_kombu_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """kombu 5.7.0's wheel from the package index."""
    out = tmp_path_factory.mktemp("kombu5")
    proc = run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                "--only-binary", ":all:", "-d", str(out), "kombu==5.7.0"],
               timeout=INDEX_TIMEOUT, check=False)
    if proc.returncode != 0:
        _unreachable("pip download kombu==5.7.0", proc)
    (wheel,) = out.glob("kombu-5.7.0-*.whl")
    return wheel


@pytest.fixture(scope="session")
def uv(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A ``uv`` binary: the one on PATH, else one pip installs into a scratch venv."""
    found = shutil.which("uv")
    if found:
        return found
    env = tmp_path_factory.mktemp("uv") / "venv"
    run([sys.executable, "-m", "venv", str(env)], timeout=120)
    proc = run([str(env / "bin" / "python"), "-m", "pip", "install", "--quiet", "uv"],
               timeout=INDEX_TIMEOUT, check=False)
    if proc.returncode != 0:
        _unreachable("pip install uv", proc)
    return str(env / "bin" / "uv")


def _venv(path: Path) -> Path:
    run([sys.executable, "-m", "venv", "--without-pip", str(path)], timeout=60)
    return path / "bin" / "python"


def _site_packages(python: Path) -> Path:
    return Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]
                    ).stdout.strip())


def _pip(python: Path, *args: str, timeout: float = INDEX_TIMEOUT, check: bool = True
         ) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "pip", "--python", str(python), *args],
               timeout=timeout, check=check)


def _assert_no_real_kombu(site: Path, wheelhouse: Path) -> None:
    """Every file of ``site/kombu`` is kombu-core's; no kombu 5.x dist-info."""
    import zipfile

    (core,) = wheelhouse.glob("kombu_core-*.whl")
    with zipfile.ZipFile(core) as whl:
        ours = {n for n in whl.namelist() if n.startswith("kombu/")}
    installed = {str(p.relative_to(site)) for p in (site / "kombu").rglob("*")
                 if p.is_file() and "__pycache__" not in p.parts}
    assert installed <= ours, f"files not from kombu-core: {sorted(installed - ours)[:20]}"
    dists = sorted(p.name for p in site.glob("kombu-*.dist-info"))
    assert all("+core" in d for d in dists), f"kombu 5.x is installed: {dists}"


APP = '''
import os
from celery import Celery

app = Celery("tasks", broker=os.environ["BROKER"], backend=os.environ["BACKEND"])
app.conf.task_default_queue = os.environ["QUEUE"]
app.conf.control_exchange = os.environ["QUEUE"] + "-control"
app.conf.event_exchange = os.environ["QUEUE"] + "-events"


@app.task
def add(x, y):
    return x + y
'''

CLIENT = '''
import sys
from tasks import add
print(add.delay(2, 3).get(timeout=30))
'''


def _worker_and_client(python: Path, directory: Path, broker: str) -> None:
    """The README's worker and client, in the environment of ``python``."""
    (directory / "tasks.py").write_text(APP)
    env = {"BROKER": broker, "BACKEND": REDIS_URL, "QUEUE": f"install-{uuid.uuid4().hex[:8]}"}
    worker = CeleryProcess("worker", [str(python), "-m", "celery", "-A", "tasks", "worker",
                                      "-P", "solo", "-l", "info", "--without-mingle",
                                      "--without-gossip"],
                           env=env, cwd=str(directory), log_dir=directory)
    try:
        worker.wait_for(" ready.")
        out = run([str(python), "-c", CLIENT], env=env, cwd=str(directory), timeout=60)
        assert out.stdout.strip() == "5", out
    finally:
        worker.stop()
        forget_redis_names(env["QUEUE"])


@pytest.mark.redis
def test_pip_with_the_placeholder(wheelhouse: Path, tmp_path: Path) -> None:
    python = _venv(tmp_path / "env")
    proc = _pip(python, "install", "--quiet", "--find-links", str(wheelhouse),
                "-c", str(CONSTRAINTS), CELERY, check=False)
    if proc.returncode != 0:
        _unreachable(f"pip install {CELERY}", proc)
    check = _pip(python, "check", check=False)
    assert check.returncode == 0, check.stdout
    site = _site_packages(python)
    _assert_no_real_kombu(site, wheelhouse)
    listed = json.loads(_pip(python, "list", "--format", "json").stdout)
    versions = {p["name"].lower(): p["version"] for p in listed}
    assert versions["kombu"] == "5.7.999+core"
    assert {"kombu-core", "kombu-redis", "kombu-pyamqp", "redis", "amqp"} <= set(versions)
    _worker_and_client(python, tmp_path, REDIS_URL)


@pytest.mark.redis
@pytest.mark.rabbitmq
def test_uv_excludes_and_the_placeholder(wheelhouse: Path, uv: str, tmp_path: Path) -> None:
    # uv pip install --excludes: kombu is left out of the resolution.
    excluded = _venv(tmp_path / "excluded")
    (tmp_path / "excludes.txt").write_text("kombu\n")
    proc = run([uv, "pip", "install", "--quiet", "--python", str(excluded),
                "--find-links", str(wheelhouse), "--excludes", str(tmp_path / "excludes.txt"),
                CELERY, "kombu-core", "kombu-pyamqp", "kombu-redis"],
               timeout=INDEX_TIMEOUT, check=False)
    if proc.returncode != 0:
        _unreachable("uv pip install --excludes", proc)
    _assert_no_real_kombu(_site_packages(excluded), wheelhouse)
    # Celery's requirement on kombu stays unmet, and pip check says so.
    check = _pip(excluded, "check", check=False)
    assert "celery 5.7.0 requires kombu, which is not installed" in check.stdout, check.stdout
    imported = run([str(excluded), "-c", "import celery.bin.celery, kombu; print(kombu.__version__)"])
    assert imported.stdout.strip().startswith("1."), imported
    vhost = f"celery-install-{uuid.uuid4().hex[:8]}"
    rabbitmqctl("add_vhost", vhost)
    try:
        rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        _worker_and_client(excluded, tmp_path, f"amqp://guest:guest@127.0.0.1:5672/{vhost}")
    finally:
        rabbitmqctl("delete_vhost", vhost)

    # The placeholder through uv: pip check is clean.
    placeholder = _venv(tmp_path / "placeholder")
    proc = run([uv, "pip", "install", "--quiet", "--python", str(placeholder),
                "--find-links", str(wheelhouse), "-c", str(CONSTRAINTS), CELERY],
               timeout=INDEX_TIMEOUT, check=False)
    if proc.returncode != 0:
        _unreachable("uv pip install (placeholder)", proc)
    _assert_no_real_kombu(_site_packages(placeholder), wheelhouse)
    check = _pip(placeholder, "check", check=False)
    assert check.returncode == 0, check.stdout


def test_uv_project_exclude_dependencies(wheelhouse: Path, uv: str, tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text(f'''
[project]
name = "celery-on-kombu-core"
version = "0.1.0"
requires-python = ">={sys.version_info[0]}.{sys.version_info[1]}"
dependencies = ["{CELERY}", "kombu-core", "kombu-pyamqp", "kombu-redis"]

[tool.uv]
exclude-dependencies = ["kombu"]
find-links = ["{wheelhouse}"]
''')
    proc = run([uv, "sync", "--quiet", "--python", sys.executable, "--directory", str(project)],
               env={"UV_PROJECT_ENVIRONMENT": str(project / ".venv")},
               timeout=INDEX_TIMEOUT, check=False)
    if proc.returncode != 0:
        _unreachable("uv sync", proc)
    python = project / ".venv" / "bin" / "python"
    _assert_no_real_kombu(_site_packages(python), wheelhouse)
    out = run([str(python), "-c", "import celery.bin.celery, kombu; print(kombu.__version__)"])
    assert out.stdout.strip().startswith("1."), out


MIXED = "import kombu"


def test_import_kombu_says_when_kombu5_shares_its_folder(
        wheelhouse: Path, real_kombu_wheel: Path, tmp_path: Path) -> None:
    (core,) = wheelhouse.glob("kombu_core-*.whl")
    python = _venv(tmp_path / "env")
    site = _site_packages(python)
    shutil.copytree(Path(__import__("pluggy").__file__).parent, site / "pluggy")

    def install(*wheels: Path, force: bool = False) -> None:
        _pip(python, "install", "--quiet", "--no-deps", "--no-index",
             *(["--force-reinstall"] if force else []), *map(str, wheels), timeout=120)

    # kombu 5.x first, kombu-core over it: import kombu stops with the fix.
    install(real_kombu_wheel)
    install(core)
    mixed = run([str(python), "-c", MIXED], check=False)
    assert mixed.returncode != 0
    assert "kombu 5.x is installed in the same folder as kombu-core" in mixed.stderr, mixed.stderr
    assert "pip uninstall -y kombu" in mixed.stderr

    # The fix the message gives works.
    _pip(python, "uninstall", "--quiet", "-y", "kombu", timeout=120)
    install(core, force=True)
    fixed = run([str(python), "-c", "import kombu; print(kombu.__version__)"])
    assert fixed.stdout.strip() == "1.0.0"

    # kombu 5.x over kombu-core replaces kombu/__init__.py itself, so what runs
    # is kombu 5.x; the next (re)install of kombu-core says so.
    install(real_kombu_wheel)
    over = run([str(python), "-c", "import kombu; print(kombu.__version__)"])
    assert over.stdout.strip() == "5.7.0"
    install(core, force=True)
    again = run([str(python), "-c", MIXED], check=False)
    assert "kombu 5.x is installed in the same folder as kombu-core" in again.stderr, again.stderr


def test_dev_setup_venv_has_no_real_kombu() -> None:
    """``./dev setup`` installs Celery with the placeholder: no kombu 5.x in .venv."""
    site = Path(sysconfig.get_path("purelib"))
    dists = sorted(p.name for p in site.glob("kombu-*.dist-info"))
    if not any(site.glob("celery-*.dist-info")):
        pytest.skip("celery is not installed in this environment (./dev setup installs it)")
    assert dists and all("+core" in d for d in dists), dists
    assert not (site / "kombu" / "transport" / "librabbitmq.py").exists()
    check = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True,
                           text=True, timeout=120, env={**os.environ,
                                                        "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    assert check.returncode == 0, check.stdout

