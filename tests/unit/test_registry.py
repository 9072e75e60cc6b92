"""Transport resolution through plugins, in isolated interpreters.

Each scenario writes real distributions (``*.dist-info`` with an
``entry_points.txt``) into a temporary site directory and runs a fresh
``python -S`` whose only distributions are those, so importlib.metadata
discovers exactly what the test installed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pluggy
import pytest

ROOT = Path(__file__).resolve().parents[2]
CORE_SRC = ROOT / "core" / "src"
MEMORY_SRC = ROOT / "plugins" / "kombu-memory" / "src"
PLUGGY_PACKAGE = Path(pluggy.__file__).resolve().parent


@dataclass
class Dist:
    name: str
    version: str
    entry_points: dict[str, str]
    modules: dict[str, str] = field(default_factory=dict)


MEMORY = Dist("kombu-memory", "1.0.0", {"memory": "kombu_memory.plugin"})

VIRTUAL_TRANSPORT = """
from queue import Empty
from kombu.transport import virtual

_queues = {}

class Channel(virtual.Channel):
    def _put(self, queue, message, **kwargs):
        _queues.setdefault(queue, []).append(message)
    def _get(self, queue, timeout=None):
        try:
            return _queues[queue].pop(0)
        except (KeyError, IndexError):
            raise Empty()
    def _purge(self, queue):
        return len(_queues.pop(queue, []))
    def _size(self, queue):
        return len(_queues.get(queue, []))

class Transport(virtual.Transport):
    Channel = Channel
    driver_type = driver_name = "%(name)s"
"""


def plugin_module(name: str, target: str, aliases: tuple[str, ...] = (),
                  api: tuple[int, int] = (1, 0)) -> str:
    return textwrap.dedent(f"""
        import kombu

        @kombu.hookimpl
        def kombu_register_transports(register):
            register({name!r}, {target!r}, aliases={aliases!r}, api={api!r})
    """)


def run(tmp_path: Path, dists: list[Dist], code: str,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    site = tmp_path / "site"
    site.mkdir(parents=True, exist_ok=True)
    # pluggy is copied in, not put on the path: its site-packages holds the
    # project's installed distributions, which would leak into the scenario.
    shutil.copytree(PLUGGY_PACKAGE, site / "pluggy", dirs_exist_ok=True)
    for dist in dists:
        info = site / f"{dist.name.replace('-', '_')}-{dist.version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {dist.name}\nVersion: {dist.version}\n")
        lines = ["[kombu.transports]"] + [f"{k} = {v}" for k, v in dist.entry_points.items()]
        (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
        for module, source in dist.modules.items():
            path = site / (module.replace(".", "/") + ".py")
            path.parent.mkdir(parents=True, exist_ok=True)
            for parent in path.relative_to(site).parents:
                if str(parent) != ".":
                    (site / parent / "__init__.py").touch()
            path.write_text(source)
    full_env = {k: v for k, v in os.environ.items()
                if not k.startswith("KOMBU_") and k != "PYTHONPATH"}
    full_env["PYTHONPATH"] = os.pathsep.join(map(str, (site, CORE_SRC, MEMORY_SRC)))
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-S", "-c", textwrap.dedent(code)],
                          capture_output=True, text=True, env=full_env, timeout=60)


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_import_kombu_loads_no_plugin_driver_or_metadata(tmp_path: Path) -> None:
    out = ok(run(tmp_path, [MEMORY], """
        import sys, json, kombu
        print(json.dumps(sorted(m for m in ("pluggy", "importlib.metadata", "kombu_memory",
              "redis", "amqp", "kombu.connection") if m in sys.modules)))
    """))
    assert json.loads(out) == []


def test_memory_resolves_through_its_entry_point(tmp_path: Path) -> None:
    out = ok(run(tmp_path, [MEMORY], """
        import json
        from kombu import Connection
        from kombu.transport import registry
        c = Connection("memory://")
        c.connect()
        info = registry.plugin_info()
        import sys
        print(json.dumps([type(c.transport).__module__, info,
                          "importlib.metadata" in sys.modules]))
    """))
    module, info, metadata_imported = json.loads(out)
    assert not metadata_imported  # entry points are read without it
    assert module == "kombu_memory.transport"
    assert info == [{"plugin": "memory", "dist": "kombu-memory", "version": "1.0.0",
                     "transports": ["memory"], "error": None}]


def test_third_party_by_name_scheme_alias_and_path(tmp_path: Path) -> None:
    acme = Dist("kombu-acme", "2.3.1", {"acme": "kombu_acme.plugin"}, {
        "kombu_acme.plugin": plugin_module("acme", "kombu_acme.transport:Transport",
                                           aliases=("acmes",)),
        "kombu_acme.transport": VIRTUAL_TRANSPORT % {"name": "acme"},
    })
    out = ok(run(tmp_path, [MEMORY, acme], """
        import json
        from kombu import Connection
        names = []
        for conn in (Connection(transport="acme"), Connection("acme://"),
                     Connection("acmes://host/"),
                     Connection(transport="kombu_acme.transport:Transport")):
            names.append(type(conn.transport).__module__)
        with Connection("acme://") as conn:
            q = conn.SimpleQueue("q1")
            q.put({"hello": "world"})
            msg = q.get(timeout=1)
            msg.ack()
            names.append(msg.payload)
        print(json.dumps(names))
    """))
    assert json.loads(out) == ["kombu_acme.transport"] * 4 + [{"hello": "world"}]


def test_broken_plugin_is_local_and_names_its_distribution(tmp_path: Path) -> None:
    broken = Dist("kombu-broken", "0.4.2", {"broken": "kombu_broken.plugin"}, {
        "kombu_broken.plugin": "import no_such_driver_module\n",
    })
    out = ok(run(tmp_path, [MEMORY, broken], """
        import json
        from kombu import Connection
        from kombu.exceptions import TransportLoadError
        Connection("memory://").connect()          # the others still work
        try:
            Connection(transport="broken").connect()
        except TransportLoadError as exc:
            print(json.dumps([str(exc), type(exc.__cause__).__name__,
                              isinstance(exc, ImportError)]))
    """))
    message, cause, is_import_error = json.loads(out)
    assert "kombu-broken 0.4.2" in message
    assert "no_such_driver_module" in message
    assert cause == "ModuleNotFoundError"
    assert is_import_error


def test_hook_that_raises_and_wrong_api_are_load_errors(tmp_path: Path) -> None:
    raising = Dist("kombu-raising", "1.0", {"raising": "kombu_raising.plugin"}, {
        "kombu_raising.plugin": textwrap.dedent("""
            import kombu
            @kombu.hookimpl
            def kombu_register_transports(register):
                raise RuntimeError("boom in registration")
        """),
    })
    future = Dist("kombu-future", "9.0", {"future": "kombu_future.plugin"}, {
        "kombu_future.plugin": plugin_module("future", "kombu_future.t:Transport", api=(2, 0)),
    })
    out = ok(run(tmp_path, [MEMORY, raising, future], """
        import json
        from kombu.transport import get_transport_cls
        from kombu.exceptions import TransportLoadError
        errors = []
        for name in ("raising", "future"):
            try:
                get_transport_cls(name)
            except TransportLoadError as exc:
                errors.append(str(exc))
        get_transport_cls("memory")
        print(json.dumps(errors))
    """))
    raising_msg, future_msg = json.loads(out)
    assert "boom in registration" in raising_msg and "kombu-raising 1.0" in raising_msg
    assert "API 2.0" in future_msg and "provides 1.0" in future_msg


def test_an_alias_of_a_broken_plugin_names_the_failed_plugin(tmp_path: Path) -> None:
    broken = Dist("kombu-zz", "1.0", {"zz": "kombu_zz.plugin"}, {
        "kombu_zz.plugin": "import no_such_driver_module\n",
    })
    out = ok(run(tmp_path, [MEMORY, broken], """
        from kombu.transport import get_transport_cls
        try:
            get_transport_cls("zzs")   # an alias the plugin would have registered
        except KeyError as exc:
            print(exc)
    """))
    # The broken name is no suggestion (it would fail too): the message says
    # the name may come from it, and why it failed.
    assert "Did you mean" not in out
    assert "It may come from plugin 'zz' (kombu-zz 1.0)" in out
    assert "no_such_driver_module" in out


def _broken(name: str) -> Dist:
    return Dist(f"kombu-{name}", "1.0", {name: f"kombu_{name}.plugin"}, {
        f"kombu_{name}.plugin": "import no_such_driver_module\n"})


def test_a_typo_names_only_the_broken_plugins_close_to_it(tmp_path: Path) -> None:
    dists = [MEMORY, _broken("sqlite"), _broken("alpha"), _broken("beta")]
    out = ok(run(tmp_path, dists, """
        from kombu.transport import get_transport_cls
        try:
            get_transport_cls("sqllite")
        except KeyError as exc:
            print(exc)
    """))
    assert "It may come from plugin 'sqlite' (kombu-sqlite 1.0)" in out
    assert "'alpha'" not in out and "'beta'" not in out
    assert "2 other plugins failed to load; kombu.transport.registry.plugin_info() lists them." \
        in out
    assert ".." not in out


def test_one_register_with_a_bad_api_fails_only_that_transport(tmp_path: Path) -> None:
    mixed = Dist("kombu-mixed", "1.0", {"mixed": "kombu_mixed.plugin"}, {
        "kombu_mixed.plugin": textwrap.dedent("""
            import kombu

            @kombu.hookimpl
            def kombu_register_transports(register):
                register("good1", "kombu_mixed.t:Transport", aliases=("g1",))
                register("future", "kombu_mixed.t:Transport", aliases=("fut",), api=(2, 0))
                register("good2", "kombu_mixed.t:Transport")
        """),
        "kombu_mixed.t": VIRTUAL_TRANSPORT % {"name": "mixed"},
    })
    out = ok(run(tmp_path, [MEMORY, mixed], """
        import json
        from kombu import Connection
        from kombu.exceptions import TransportLoadError
        from kombu.transport import get_transport_cls, registry
        errors = {}
        for name in ("future", "fut"):
            try:
                get_transport_cls(name)
            except TransportLoadError as exc:
                errors[name] = str(exc)
        names = [get_transport_cls(n).__name__ for n in ("good1", "g1", "good2")]
        with Connection("good2://") as conn:
            q = conn.SimpleQueue("q")
            q.put("ok")
            body = q.get(timeout=1).payload
        row = [r for r in registry.plugin_info() if r["plugin"] == "mixed"][0]
        print(json.dumps([errors, names, body, sorted(row["transports"]),
                          sorted(row["failed"])]))
    """))
    errors, names, body, transports, failed = json.loads(out)
    assert names == ["Transport"] * 3 and body == "ok"
    assert transports == ["g1", "good1", "good2"] and failed == ["fut", "future"]
    for message in errors.values():
        assert "transport 'future' of plugin 'mixed'" in message
        assert "API 2.0" in message and "agree:" not in message
        assert "agree. Other transports are unaffected" in message
        assert "good1" not in message and "good2" not in message
        assert ".." not in message


def test_a_bad_transport_name_fails_at_construction_like_its_url(tmp_path: Path) -> None:
    out = ok(run(tmp_path, [MEMORY, _broken("sqlite")], """
        import json
        from kombu import Connection
        out = []
        for args in ({"transport": "sqllite"}, {"hostname": "sqllite://"},
                     {"transport": "sqlite"}, {"hostname": "sqlite://"}):
            try:
                conn = Connection(**args)
            except Exception as exc:
                out.append([type(exc).__name__, str(exc)])
            else:
                out.append(["constructed", repr(conn)])
        conn = Connection(transport="memory")          # a good name is unchanged
        out.append(["constructed", repr(conn)])
        conn = Connection(transport="no.such:Thing")   # a path is imported on use
        out.append(["constructed", str(conn.transport_cls)])
        print(json.dumps(out))
    """))
    (k1, m1), (k2, m2), (k3, m3), (k4, m4), (k5, m5), (k6, m6) = json.loads(out)
    assert k1 == k2 == "UnknownTransport" and m1 == m2
    assert k3 == k4 == "TransportLoadError" and m3 == m4
    assert k5 == "constructed" and "memory://" in m5
    assert k6 == "constructed" and m6 == "no.such:Thing"


RETIRED_HOOKS_PLUGIN = textwrap.dedent("""
    import kombu

    @kombu.hookimpl
    def kombu_register_transports(register):
        register("pu", "kombu_pu.transport:Transport")

    @kombu.hookimpl
    def kombu_parse_url(scheme, url):
        raise AssertionError("kombu_parse_url is not a hook of kombu-core")

    @kombu.hookimpl
    def kombu_connection_defaults(transport, options):
        raise AssertionError("kombu_connection_defaults is not a hook of kombu-core")
""")


def test_a_plugin_with_hooks_kombu_does_not_define_still_registers(tmp_path: Path) -> None:
    """kombu_parse_url and kombu_connection_defaults are not hookspecs: a plugin
    that implements them loads, its transport parses URLs with kombu's parser,
    and the functions are never called."""
    plugin = Dist("kombu-pu", "1.0", {"pu": "kombu_pu.plugin"}, {
        "kombu_pu.plugin": RETIRED_HOOKS_PLUGIN,
        "kombu_pu.transport": VIRTUAL_TRANSPORT % {"name": "pu"},
    })
    out = ok(run(tmp_path, [MEMORY, plugin], """
        import json
        from kombu import Connection
        from kombu import hookspecs
        c = Connection("pu://somehost:1/?heartbeat=3")
        with Connection(transport="pu") as conn:
            conn.connect()
            connected = conn.connected
        print(json.dumps([c.hostname, c.port, c.heartbeat, connected,
                          hasattr(hookspecs, "kombu_parse_url")]))
    """))
    assert json.loads(out) == ["somehost", 1, 3.0, True, False]


def test_unknown_name_lists_installed_and_suggests(tmp_path: Path) -> None:
    out = ok(run(tmp_path, [MEMORY], """
        import json
        from kombu.transport import get_transport_cls
        out = []
        for name in ("memroy", "redis", "sqs"):
            try:
                get_transport_cls(name)
            except KeyError as exc:
                out.append([type(exc).__name__, str(exc)])
        print(json.dumps(out))
    """))
    (kind1, typo), (kind2, shipped), (kind3, kombu_only) = json.loads(out)
    assert kind1 == "UnknownTransport"
    assert "Did you mean 'memory'?" in typo and "Installed transports: memory" in typo
    assert kind2 == "TransportNotInstalled" and "pip install kombu-redis" in shipped
    assert kind3 == "UnknownTransport" and "kombu 5.x bundles" in kombu_only


def test_conflict_is_deterministic_warned_and_selectable(tmp_path: Path) -> None:
    a = Dist("kombu-fast-a", "1.0", {"fast": "fast_a.plugin"}, {
        "fast_a.plugin": plugin_module("fast", "fast_a.t:Transport"),
        "fast_a.t": VIRTUAL_TRANSPORT % {"name": "a"},
    })
    b = Dist("kombu-fast-b", "1.0", {"fast": "fast_b.plugin"}, {
        "fast_b.plugin": plugin_module("fast", "fast_b.t:Transport"),
        "fast_b.t": VIRTUAL_TRANSPORT % {"name": "b"},
    })
    code = """
        import json, warnings
        from kombu.transport import get_transport_cls
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            cls = get_transport_cls("fast")
        print(json.dumps([cls.driver_type, [str(x.message) for x in w]]))
    """
    driver, warned = json.loads(ok(run(tmp_path / "1", [b, a, MEMORY], code)))
    assert driver == "a"
    assert len(warned) == 1
    assert "kombu-fast-a 1.0" in warned[0] and "kombu-fast-b 1.0" in warned[0]
    # the advice works: blocking the distribution in use selects the other
    assert "KOMBU_BLOCKED_TRANSPORTS=kombu-fast-a" in warned[0]
    assert "transport='fast_b.t:Transport'" in warned[0]
    driver, warned = json.loads(ok(run(tmp_path / "2", [a, b, MEMORY], code,
                                       env={"KOMBU_BLOCKED_TRANSPORTS": "kombu-fast-a"})))
    assert (driver, warned) == ("b", [])


def test_a_shipped_name_stays_with_its_distribution(tmp_path: Path) -> None:
    # "kombu-aaa" sorts before kombu-memory and claims its name: it loses.
    squatter = Dist("kombu-aaa", "1.0", {"aaa": "aaa.plugin"}, {
        "aaa.plugin": plugin_module("memory", "aaa.t:Transport"),
        "aaa.t": VIRTUAL_TRANSPORT % {"name": "aaa"},
    })
    out = ok(run(tmp_path, [squatter, MEMORY], """
        import json, warnings
        from kombu.transport import get_transport_cls
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            cls = get_transport_cls("memory")
        print(json.dumps([cls.__module__, [str(x.message) for x in w]]))
    """))
    module, warned = json.loads(out)
    assert module == "kombu_memory.transport"
    assert len(warned) == 1 and "transport='aaa.t:Transport'" in warned[0]


def test_autoload_can_be_disabled_and_register_in_process(tmp_path: Path) -> None:
    out = ok(run(tmp_path, [MEMORY], """
        import json
        import kombu
        from kombu.transport import get_transport_cls, register
        from kombu.exceptions import UnknownTransport
        try:
            get_transport_cls("memory")
        except UnknownTransport as exc:
            first = str(exc)
        register("mine", "kombu_memory.transport:Transport", aliases=("mine2",))
        print(json.dumps([first, get_transport_cls("mine2").__name__]))
    """, env={"KOMBU_DISABLE_PLUGIN_AUTOLOAD": "1"}))
    first, cls = json.loads(out)
    assert "KOMBU_DISABLE_PLUGIN_AUTOLOAD is set" in first
    assert cls == "Transport"


def test_transport_aliases_mutation_keeps_working(tmp_path: Path) -> None:
    pgmq_like = Dist("kombu-legacy", "0.1", {}, {
        "kombu_legacy.__init__": (
            "from kombu.transport import TRANSPORT_ALIASES\n"
            "TRANSPORT_ALIASES['legacy'] = 'kombu_legacy.transport:TransportLegacy'\n"),
        "kombu_legacy.transport": (VIRTUAL_TRANSPORT % {"name": "legacy"}).replace(
            "class Transport(", "class TransportLegacy("),
    })
    out = ok(run(tmp_path, [MEMORY, pgmq_like], """
        import kombu_legacy
        from kombu import Connection
        conn = Connection("legacy://")
        conn.connect()
        print(type(conn.transport).__name__)
    """))
    assert out.strip() == "TransportLegacy"


def test_in_process_register_conflicts_need_replace() -> None:
    from kombu.exceptions import TransportConflict
    from kombu.transport import get_transport_cls, register, unregister

    register("unit-test-transport", "kombu_memory.transport:Transport")
    try:
        with pytest.raises(TransportConflict, match="replace=True"):
            register("unit-test-transport", "kombu.transport.virtual:Transport")
        register("unit-test-transport", "kombu.transport.virtual:Transport", replace=True)
        from kombu.transport.virtual import Transport

        assert get_transport_cls("unit-test-transport") is Transport
    finally:
        unregister("unit-test-transport")
    with pytest.raises(KeyError):
        get_transport_cls("unit-test-transport")


def test_register_rejects_a_foreign_api() -> None:
    from kombu.transport import register

    with pytest.raises(ValueError, match="API 2.0"):
        register("unit-test-future", "x:y", api=(2, 0))


def test_fast_entry_point_scan_agrees_with_importlib_metadata() -> None:
    from importlib.metadata import entry_points

    from kombu.utils.entrypoints import scan_entry_points

    fast = scan_entry_points("kombu.transports")
    assert fast is not None
    ours = sorted((ep.name, ep.value, ep.dist.name, ep.dist.version) for ep in fast)
    theirs = sorted((ep.name, ep.value, ep.dist.name.lower().replace("_", "-"), ep.dist.version)
                    for ep in entry_points(group="kombu.transports"))
    assert ours == theirs
    assert ("memory", "kombu_memory.plugin", "kombu-memory", "1.0.0") in ours
