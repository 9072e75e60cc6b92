"""The workspace's distributions, as built wheels and as ``import kombu`` sees them.

Wheels are built from the checkout with the test environment's hatchling
(``pip wheel --no-build-isolation``), so no network is needed.
"""

from __future__ import annotations

import configparser
import importlib.util
import json
import sys
import zipfile
from email.parser import HeaderParser
from pathlib import Path
from typing import NamedTuple

import pytest
from helpers import run, run_python
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python < 3.11
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]

#: Distributions that talk to a broker; kombu-core must not require any.
BROKER_CLIENTS = frozenset({
    "redis", "amqp", "librabbitmq", "pika", "aio-pika", "pymongo", "boto3", "pycurl",
    "kazoo", "confluent-kafka", "sqlalchemy", "pyro4", "azure-servicebus",
    "azure-storage-queue", "google-cloud-pubsub", "qpid-proton", "python-consul2",
})


class Dist(NamedTuple):
    directory: str
    name: str
    package: str
    transports: frozenset[str]


DISTS = [
    Dist("core", "kombu-core", "kombu", frozenset()),
    Dist("plugins/kombu-memory", "kombu-memory", "kombu_memory", frozenset({"memory"})),
    Dist("plugins/kombu-redis", "kombu-redis", "kombu_redis", frozenset({"redis"})),
    Dist("plugins/kombu-pyamqp", "kombu-pyamqp", "kombu_pyamqp", frozenset({"pyamqp"})),
]


class Wheel(NamedTuple):
    files: frozenset[str]
    metadata: dict[str, list[str]]
    entry_points: dict[str, dict[str, str]]
    path: Path


def _project(dist: Dist) -> dict[str, object]:
    with open(ROOT / dist.directory / "pyproject.toml", "rb") as f:
        project: dict[str, object] = tomllib.load(f)["project"]
    return project


def _read_wheel(path: Path) -> Wheel:
    with zipfile.ZipFile(path) as whl:
        files = frozenset(whl.namelist())
        dist_info = next(name.split("/")[0] for name in files
                         if name.endswith(".dist-info/METADATA"))
        message = HeaderParser().parsestr(whl.read(f"{dist_info}/METADATA").decode())
        metadata = {key: message.get_all(key) or [] for key in set(message.keys())}
        parser = configparser.ConfigParser(delimiters=("=",))
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        if f"{dist_info}/entry_points.txt" in files:
            parser.read_string(whl.read(f"{dist_info}/entry_points.txt").decode())
        entry_points = {section: dict(parser[section]) for section in parser.sections()}
    return Wheel(files, metadata, entry_points, path)


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Wheel]:
    """One wheel per workspace distribution, built from the checkout."""
    assert importlib.util.find_spec("hatchling"), "hatchling is not installed: run ./dev setup"
    out = tmp_path_factory.mktemp("wheels")
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "-w", str(out), *(str(ROOT / dist.directory) for dist in DISTS)], timeout=100)
    built = {}
    for path in out.glob("*.whl"):
        wheel = _read_wheel(path)
        built[canonicalize_name(wheel.metadata["Name"][0])] = wheel
    assert sorted(built) == sorted(dist.name for dist in DISTS)
    return built


@pytest.mark.slow
@pytest.mark.parametrize("dist", DISTS, ids=lambda d: d.name)
class TestWheels:
    def test_name_and_version_are_the_distributions_own(self, dist: Dist,
                                                        wheels: dict[str, Wheel]) -> None:
        project = _project(dist)
        metadata = wheels[dist.name].metadata
        assert metadata["Name"] == [project["name"]]
        assert metadata["Version"] == [project["version"]]
        version = run_python(f"import {dist.package}; print({dist.package}.__version__)")
        assert version.stdout.strip() == project["version"], (
            f"{dist.package}.__version__ differs from {dist.directory}/pyproject.toml")

    def test_ships_py_typed(self, dist: Dist, wheels: dict[str, Wheel]) -> None:
        assert f"{dist.package}/py.typed" in wheels[dist.name].files

    def test_transport_entry_points(self, dist: Dist, wheels: dict[str, Wheel]) -> None:
        wheel = wheels[dist.name]
        declared = wheel.entry_points.get("kombu.transports", {})
        assert set(declared) == dist.transports
        for name, value in declared.items():
            module = value.strip()
            assert ":" not in module, f"entry point {name} must name a module, not {module!r}"
            assert module.startswith(f"{dist.package}."), module
            assert f"{module.replace('.', '/')}.py" in wheel.files, f"{module} is not in the wheel"



@pytest.mark.slow
@pytest.mark.parametrize("dist", DISTS[1:], ids=lambda d: d.name)
def test_plugins_require_a_range_of_kombu_core(dist: Dist, wheels: dict[str, Wheel]) -> None:
    core_version = _project(DISTS[0])["version"]
    requirements = [Requirement(r) for r in wheels[dist.name].metadata["Requires-Dist"]]
    core = [r for r in requirements if canonicalize_name(r.name) == "kombu-core"]
    assert len(core) == 1, f"{dist.name} must declare Requires-Dist: kombu-core"
    operators = {spec.operator for spec in core[0].specifier}
    assert operators & {">=", ">", "~="} and operators & {"<", "<=", "~="}, (
        f"{dist.name} must bound kombu-core from below and above, not {core[0]}")
    assert core[0].specifier.contains(str(core_version))


@pytest.mark.slow
def test_core_requires_no_broker_client(wheels: dict[str, Wheel]) -> None:
    requirements = [Requirement(r) for r in wheels["kombu-core"].metadata["Requires-Dist"]]
    names = {canonicalize_name(r.name) for r in requirements}
    assert not names & BROKER_CLIENTS
    assert "pluggy" in names


def test_import_kombu_loads_no_plugin_no_client_no_metadata() -> None:
    code = ("import json, sys\nbefore = set(sys.modules)\nimport kombu\n"
            "print(json.dumps(sorted(set(sys.modules) - before)))\n"
            "print(json.dumps(sorted(sys.modules)))")
    added_line, loaded_line = run_python(code).stdout.splitlines()
    loaded = set(json.loads(loaded_line))
    forbidden = {"redis", "amqp", "kombu_redis", "kombu_memory", "kombu_pyamqp",
                 "importlib.metadata", "importlib_metadata", "pluggy"}
    assert not loaded & forbidden, (
        f"import kombu loaded {sorted(loaded & forbidden)}; it added {json.loads(added_line)}")


def _fresh_env(tmp_path: Path, wheel_paths: list[Path], packages: list[str]) -> Path:
    """A new virtual environment holding only ``wheel_paths`` (installed with
    pip, without dependencies) and ``packages`` copied from the test
    environment; returns its python."""
    import importlib
    import shutil

    env = tmp_path / "env"
    run([sys.executable, "-m", "venv", "--without-pip", str(env)], timeout=60)
    python = env / "bin" / "python"
    site = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]
                    ).stdout.strip())
    for name in packages:
        shutil.copytree(Path(importlib.import_module(name).__file__).parent, site / name)  # type: ignore[arg-type]
    run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
         "--no-deps", "--no-index", *map(str, wheel_paths)], timeout=100)
    return python


SIMPLE_QUEUE_ROUND_TRIP = """
import json, sys, kombu
from kombu import Connection
from kombu.exceptions import TransportNotInstalled
out = {"kombu": kombu.__file__}
split = sys.argv.index("--")
for url in sys.argv[1:split]:
    with Connection(url) as conn:
        queue = conn.SimpleQueue(f"fresh-env-{id(out)}")
        queue.put({"via": url})
        message = queue.get(timeout=5)
        message.ack()
        queue.queue.delete()
        out[url] = [message.payload, type(conn.transport).__module__]
for url in sys.argv[split + 1:]:  # transports that are not installed
    try:
        Connection(url).connect()
    except TransportNotInstalled as exc:
        out[url] = str(exc)
print(json.dumps(out))
"""


@pytest.mark.slow
def test_a_fresh_environment_with_core_a_plugin_and_a_third_party_wheel(
        wheels: dict[str, Wheel], tmp_path: Path) -> None:
    """What ``pip install kombu-core kombu-memory kombu-dictq`` gives a user: the
    wheels (built from the checkout, kombu-dictq from tests/thirdparty) in a new
    virtual environment that holds nothing else but pluggy."""
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "-w", str(tmp_path / "w"), str(ROOT / "tests" / "thirdparty" / "kombu-dictq")],
        timeout=100)
    (dictq,) = (tmp_path / "w").glob("kombu_dictq-*.whl")
    python = _fresh_env(tmp_path, [wheels["kombu-core"].path, wheels["kombu-memory"].path, dictq],
                        ["pluggy"])
    out = json.loads(run([str(python), "-c", SIMPLE_QUEUE_ROUND_TRIP, "memory://", "dictq://", "--",
                          "redis://127.0.0.1:1/0", "amqp://127.0.0.1:1//"],
                         cwd=str(tmp_path)).stdout)
    assert "/env/" in out["kombu"], out["kombu"]
    assert out["memory://"] == [{"via": "memory://"}, "kombu_memory.transport"]
    assert out["dictq://"] == [{"via": "dictq://"}, "kombu_dictq.transport"]
    assert "pip install kombu-redis" in out["redis://127.0.0.1:1/0"]
    assert "pip install kombu-pyamqp" in out["amqp://127.0.0.1:1//"]


@pytest.mark.slow
@pytest.mark.redis
def test_pip_install_kombu_core_kombu_redis_runs_kombu_code(
        wheels: dict[str, Wheel], tmp_path: Path, redis_url: str) -> None:
    """The mission's promise: kombu-core, kombu-redis and redis-py (with pluggy)
    in a new environment, and kombu code runs against a real Redis."""
    python = _fresh_env(tmp_path, [wheels["kombu-core"].path, wheels["kombu-redis"].path],
                        ["pluggy", "redis"])
    out = json.loads(run([str(python), "-c", SIMPLE_QUEUE_ROUND_TRIP, redis_url, "--",
                          "amqp://127.0.0.1:1//", "memory://"],
                         cwd=str(tmp_path)).stdout)
    assert "/env/" in out["kombu"], out["kombu"]
    assert out[redis_url] == [{"via": redis_url}, "kombu_redis.transport"]
    assert "pip install kombu-pyamqp" in out["amqp://127.0.0.1:1//"]
    assert "pip install kombu-memory" in out["memory://"]
