"""``kombu transports``: the installed console script lists what the registry finds."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pluggy
import pytest
from helpers import run, run_python
from helpers.cli import KOMBU, kombu

ROOT = Path(__file__).resolve().parents[2]
PLUGGY_PACKAGE = Path(pluggy.__file__).resolve().parent


def _rows(stdout: str) -> dict[str, dict]:
    return {row["name"]: row for row in json.loads(stdout)["transports"]}


def test_lists_the_shipped_and_third_party_transports() -> None:
    proc = kombu("transports", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["transport_api"] == "1.0"
    rows = _rows(proc.stdout)
    assert {"memory", "redis", "sentinel", "pyamqp", "amqps", "dictq"} <= set(rows)
    dictq = rows["dictq"]
    assert dictq["distribution"] == "kombu-dictq" and dictq["version"] == "0.1.0"
    assert dictq["aliases"] == ["dq"] and dictq["schemes"] == ["dictq", "dq"]
    assert dictq["api"] == "1.0" and dictq["loads"] is True and dictq["error"] is None
    assert rows["pyamqp"]["schemes"] == ["pyamqp", "amqp"]
    assert rows["redis"]["distribution"] == "kombu-redis"
    assert rows["redis"]["target"] == "kombu_redis.transport:Transport"


def test_table_output() -> None:
    proc = kombu("transports")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("kombu-core ") and "transport API 1.0" in lines[0]
    assert lines[1].split() == ["NAME", "ALIASES", "URL", "SCHEMES", "DISTRIBUTION", "API", "LOADS"]
    dictq = next(line for line in lines if line.startswith("dictq "))
    assert "dq" in dictq and "dictq://, dq://" in dictq and "kombu-dictq 0.1.0" in dictq
    assert dictq.split()[-1] == "yes"


def test_no_load_imports_no_transport() -> None:
    proc = kombu("transports", "--json", "--no-load")
    assert proc.returncode == 0, proc.stderr
    assert {row["loads"] for row in _rows(proc.stdout).values()} == {None}


def test_python_dash_m_kombu_is_the_same_command() -> None:
    proc = run([sys.executable, "-m", "kombu", "transports", "--json"], check=False)
    assert proc.returncode == 0, proc.stderr
    assert "dictq" in _rows(proc.stdout)


def _broken_site(tmp_path: Path) -> Path:
    """A site directory holding two plugins: one that fails to import, one whose class does not."""
    site = tmp_path / "site"
    for name, module, source in (
            ("kombu-broken", "kombu_broken_plugin",
             "import kombu\nraise ImportError('kombu_broken needs the frobnicate library')\n"),
            ("kombu-noclass", "kombu_noclass_plugin",
             "import kombu\n\n@kombu.hookimpl\ndef kombu_register_transports(register):\n"
             "    register('noclass', 'kombu_noclass_missing.transport:Transport', api=(1, 0))\n")):
        info = site / f"{name.replace('-', '_')}-0.3.0.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.3.0\n")
        (info / "entry_points.txt").write_text(
            f"[kombu.transports]\n{name.split('-')[1]} = {module}\n")
        (site / f"{module}.py").write_text(source)
    return site


def test_a_broken_plugin_is_listed_with_its_error(tmp_path: Path) -> None:
    env = {"PYTHONPATH": os.pathsep.join(filter(None, (str(_broken_site(tmp_path)),
                                                       os.environ.get("PYTHONPATH"))))}
    proc = kombu("transports", "--json", env=env)
    assert proc.returncode == 1, proc.stderr  # the environment has a broken plugin
    rows = _rows(proc.stdout)
    broken = rows["broken"]
    assert broken["loads"] is False and broken["distribution"] == "kombu-broken"
    assert broken["version"] == "0.3.0"
    assert "ImportError" in broken["error"] and "frobnicate" in broken["error"]
    noclass = rows["noclass"]
    assert noclass["loads"] is False and "kombu_noclass_missing" in noclass["error"]
    # The others still load.
    assert rows["memory"]["loads"] is True and rows["dictq"]["loads"] is True

    text = kombu("transports", env=env)
    assert text.returncode == 1
    assert "Traceback" not in text.stdout + text.stderr
    errors = [line for line in text.stdout.splitlines() if line.startswith("error: ")]
    assert len(errors) == 2
    assert any("broken (kombu-broken 0.3.0)" in line and "frobnicate" in line for line in errors)


def test_only_the_core_installed(tmp_path: Path) -> None:
    """With no plugin at all the command still runs and says what to install."""
    site = tmp_path / "site"
    site.mkdir()
    shutil.copytree(PLUGGY_PACKAGE, site / "pluggy")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KOMBU_")}
    env["PYTHONPATH"] = os.pathsep.join((str(site), str(ROOT / "core" / "src")))
    proc = run([sys.executable, "-S", "-m", "kombu", "transports"], env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "no transport is installed: pip install kombu-memory" in proc.stdout


def test_import_kombu_does_not_import_the_cli() -> None:
    out = run_python("import sys, kombu, kombu.connection; "
                     "print(sorted(m for m in sys.modules if m.startswith('kombu.cli') "
                     "or m in ('argparse',)))")
    assert out.stdout.strip() == "[]"


def test_help_documents_every_exit_code() -> None:
    proc = run([KOMBU, "--help"])
    for code in ("0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "130"):
        assert any(line.split()[:1] == [code] for line in proc.stdout.splitlines()), code
    for command in ("transports", "check", "publish", "consume", "purge", "queues", "bench"):
        assert command in proc.stdout
        sub = run([KOMBU, command, "--help"])
        assert "exit codes:" in sub.stdout and "--timeout" in sub.stdout


def test_bad_arguments_exit_2_with_usage() -> None:
    proc = kombu("consume")
    assert proc.returncode == 2
    assert "usage: kombu consume" in proc.stderr and "Traceback" not in proc.stderr
    proc = kombu("nosuchcommand")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


@pytest.mark.slow
def test_the_wheel_installs_the_console_script(tmp_path: Path) -> None:
    """kombu-core's wheel declares the script; pip installs a working ``kombu``."""
    import zipfile

    wheels = tmp_path / "wheels"
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "-w", str(wheels), str(ROOT / "core"), str(ROOT / "plugins" / "kombu-memory")],
        timeout=100)
    (core,) = wheels.glob("kombu_core-*.whl")
    with zipfile.ZipFile(core) as whl:
        name = next(n for n in whl.namelist() if n.endswith(".dist-info/entry_points.txt"))
        assert "[console_scripts]\nkombu = kombu.cli:main" in whl.read(name).decode()
    env = tmp_path / "env"
    run([sys.executable, "-m", "venv", "--without-pip", str(env)], timeout=60)
    python = env / "bin" / "python"
    site = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]
                    ).stdout.strip())
    shutil.copytree(PLUGGY_PACKAGE, site / "pluggy")
    run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
         "--no-index", *map(str, wheels.glob("*.whl"))], timeout=100)
    proc = run([str(env / "bin" / "kombu"), "transports", "--json"], cwd=str(tmp_path))
    rows = _rows(proc.stdout)
    assert set(rows) == {"memory"} and rows["memory"]["loads"] is True
    check = run([str(python), "-m", "kombu", "check", "memory://"], cwd=str(tmp_path))
    assert check.stdout.splitlines()[-1] == "ok"
