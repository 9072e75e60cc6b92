"""The transport registry: transport names and the classes they resolve to.

:data:`registry` (a :class:`TransportRegistry`) holds the transports
registered in this process and those registered by plugins.

A name resolves, in this order, to

1. a ``'package.module:Class'`` path or an entry of
   :data:`kombu.transport.TRANSPORT_ALIASES` (kombu compatibility);
2. a transport registered in this process with :func:`register`;
3. a transport registered by a plugin found through the ``kombu.transports``
   entry-point group.  Entry points are read once, on the first name that
   1 and 2 do not know, and the result is cached.

Environment controls:

``KOMBU_DISABLE_PLUGIN_AUTOLOAD``
    When set to a non-empty value other than ``0``/``false``, entry points
    are not read at all.
``KOMBU_BLOCKED_TRANSPORTS``
    Comma separated entry-point names or distribution names whose plugins
    are not loaded.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Iterable
from importlib import import_module
from typing import TYPE_CHECKING, Any, Callable, Union

from kombu.exceptions import (
    TransportConflict,
    TransportLoadError,
    TransportNotInstalled,
    UnknownTransport,
)
from kombu.utils.entrypoints import (
    ENV_DISABLE_AUTOLOAD as ENV_DISABLE_AUTOLOAD,  # re-exported: part of this module's names
)
from kombu.utils.entrypoints import (
    autoload_disabled,
    dist_name,
    dist_version,
    entry_points,
    normalize_name,
)

if TYPE_CHECKING:  # pragma: no cover
    import pluggy

ENTRY_POINT_GROUP = "kombu.transports"
ENV_BLOCKED = "KOMBU_BLOCKED_TRANSPORTS"

#: Transport names this project ships, and the distribution that provides them.
SHIPPED: dict[str, str] = {
    "memory": "kombu-memory",
    "redis": "kombu-redis",
    "rediss": "kombu-redis",
    "sentinel": "kombu-redis",
    "pyamqp": "kombu-pyamqp",
    "amqp": "kombu-pyamqp",
    "amqps": "kombu-pyamqp",
}

#: Transports kombu 5.x bundles that this project does not ship.
KOMBU5_ONLY = frozenset({
    "librabbitmq", "qpid", "sqs", "SQS", "sqlalchemy", "sqla", "mongodb",
    "zookeeper", "consul", "etcd", "filesystem", "azurestoragequeues",
    "azureservicebus", "pyro", "gcpubsub", "confluentkafka", "kafka", "pgmq",
    "slmq", "SLMQ",
})

Target = Union[str, type, Callable[[], Any]]


class TransportConflictWarning(UserWarning):
    """Two plugins claim one transport name; one of them was chosen."""


class Registration:
    """One transport known by name."""

    __slots__ = ("name", "target", "aliases", "api", "plugin", "dist", "version", "_cls")

    def __init__(self, name: str, target: Target, aliases: tuple[str, ...] = (),
                 api: tuple[int, int] = (1, 0), plugin: str | None = None,
                 dist: str | None = None, version: str | None = None) -> None:
        self.name = name
        self.target = target
        self.aliases = aliases
        self.api = api
        self.plugin = plugin
        self.dist = dist
        self.version = version
        self._cls: type | None = None

    def __repr__(self) -> str:
        return f"<Registration {self.name!r} -> {_describe(self.target)} from {self.origin}>"

    @property
    def origin(self) -> str:
        """Who registered it, for messages."""
        if self.dist:
            return f"{self.dist} {self.version or ''}".rstrip()
        if self.plugin:
            return f"plugin {self.plugin!r}"
        return "this process"

    def load(self) -> type:
        if self._cls is None:
            try:
                self._cls = _load_target(self.target)
            except Exception as exc:
                raise TransportLoadError(
                    f"Transport {self.name!r} from {self.origin} failed to load "
                    f"{_describe(self.target)}: {type(exc).__name__}: {exc}. "
                    f"Reinstall {self.dist or 'the package that provides it'} "
                    "or check that its dependencies are installed."
                ) from exc
        return self._cls


class _Failure:
    """A plugin, or one transport of it (``names``), that could not be registered."""

    __slots__ = ("plugin", "dist", "version", "error", "reason", "names")

    def __init__(self, plugin: str, dist: str | None, version: str | None,
                 error: BaseException, reason: str, names: tuple[str, ...] = ()) -> None:
        self.plugin = plugin
        self.dist = dist
        self.version = version
        self.error = error
        self.reason = reason
        self.names = names

    @property
    def who(self) -> str:
        dist = f"{self.dist} {self.version or ''}".rstrip() if self.dist else "no distribution"
        return f"plugin {self.plugin!r} ({dist})"

    @property
    def cause(self) -> str:
        """The error as the end of a sentence (no doubled full stop)."""
        return f"{type(self.error).__name__}: {_clause(self.error)}"


def _clause(error: BaseException) -> str:
    """``str(error)`` without its closing full stop, to embed in a sentence."""
    return str(error).rstrip().rstrip(".")


def _describe(target: Target) -> str:
    if isinstance(target, str):
        return repr(target)
    return getattr(target, "__qualname__", repr(target))


def _load_target(target: Target) -> type:
    if isinstance(target, type):
        return target
    if isinstance(target, str):
        module_name, sep, attr = target.partition(":")
        if not sep:
            module_name, _, attr = target.rpartition(".")
        if not module_name or not attr:
            raise ValueError(f"{target!r} is not a 'module:Class' path")
        obj: Any = import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
        return _load_target(obj) if not isinstance(obj, type) else obj
    if callable(target):
        return _load_target(target())
    raise TypeError(f"cannot make a transport class of {target!r}")


def _check_api(api: Iterable[int], who: str) -> tuple[int, int]:
    from kombu import TRANSPORT_API

    try:
        major, minor = (int(x) for x in api)
    except (TypeError, ValueError):
        raise ValueError(f"{who}: api must be a (major, minor) pair, not {api!r}") from None
    if major != TRANSPORT_API[0] or minor > TRANSPORT_API[1]:
        raise ValueError(
            f"{who} is written for kombu transport API {major}.{minor}, but this "
            f"kombu-core provides {TRANSPORT_API[0]}.{TRANSPORT_API[1]}: install a "
            "kombu-core and a plugin version that agree."
        )
    return major, minor


class TransportRegistry:
    """Transports by name: registered in process or found through plugins."""

    def __init__(self, group: str = ENTRY_POINT_GROUP) -> None:
        self.group = group
        self._local: dict[str, Registration] = {}
        self._plugins: dict[str, Registration] = {}
        self._failures: dict[str, _Failure] = {}
        self._blocked: dict[str, str] = {}
        self._dists: dict[str, str | None] = {}
        self._cache: dict[Any, type] = {}
        self._loaded = False
        self._autoload_disabled = False
        self._lock = threading.RLock()
        self._pm: pluggy.PluginManager | None = None

    # -- in-process registration -------------------------------------------
    def register(self, name: str, target: Target, aliases: Iterable[str] = (),
                 api: Iterable[int] | None = None, *, replace: bool = False) -> Registration:
        """Register a transport in this process (for applications and tests).

        It takes precedence over plugins. Registering a name twice raises
        :exc:`~kombu.exceptions.TransportConflict` unless ``replace=True``.
        """
        from kombu import TRANSPORT_API

        reg = Registration(name, target, tuple(aliases),
                           _check_api(TRANSPORT_API if api is None else api,
                                      f"transport {name!r}"))
        with self._lock:
            for key in (name, *reg.aliases):
                prev = self._local.get(key)
                if prev is not None and not replace and prev.target != target:
                    raise TransportConflict(
                        f"Transport name {key!r} is already registered in this process "
                        f"for {_describe(prev.target)}; pass replace=True to override it."
                    )
            for key in (name, *reg.aliases):
                self._local[key] = reg
            self._cache.clear()
        return reg

    def unregister(self, name: str) -> None:
        """Forget an in-process registration and its aliases."""
        with self._lock:
            reg = self._local.get(name)
            if reg is None:
                raise UnknownTransport(f"No transport {name!r} is registered in this process")
            for key in (reg.name, *reg.aliases):
                if self._local.get(key) is reg:
                    del self._local[key]
            self._cache.clear()

    # -- plugins -----------------------------------------------------------
    @property
    def plugin_manager(self) -> pluggy.PluginManager:
        """The :class:`pluggy.PluginManager` holding the loaded plugins."""
        self.load_plugins()
        assert self._pm is not None
        return self._pm

    def _new_plugin_manager(self) -> pluggy.PluginManager:
        import pluggy

        from kombu import hookspecs

        pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        pm.add_hookspecs(hookspecs)
        return pm

    def load_plugins(self) -> None:
        """Read the entry points once (idempotent, thread-safe)."""
        if self._loaded:
            return
        with self._lock:
            # mypy keeps the narrowing above; another thread may have loaded.
            if self._loaded:
                return  # type: ignore[unreachable]
            self._pm = self._new_plugin_manager()
            if autoload_disabled():
                self._autoload_disabled = True
            else:
                self._load_entry_points()
            self._loaded = True

    def _load_entry_points(self) -> None:
        blocked = {normalize_name(b) for b in os.environ.get(ENV_BLOCKED, "").split(",") if b.strip()}
        eps = sorted(entry_points(self.group), key=lambda ep: (ep.name, dist_name(ep) or ""))
        for ep in eps:
            dist, version = dist_name(ep), dist_version(ep)
            if normalize_name(ep.name) in blocked or (dist and normalize_name(dist) in blocked):
                self._blocked[ep.name] = dist or ep.name
                for alias, owner in SHIPPED.items():
                    if owner == dist:
                        self._blocked.setdefault(alias, owner)
                continue
            self._load_plugin(ep, dist, version)

    def _load_plugin(self, ep: Any, dist: str | None, version: str | None) -> None:
        assert self._pm is not None
        try:
            module = ep.load()
            plugin_name = ep.name if self._pm.get_plugin(ep.name) is None else f"{dist}:{ep.name}"
            self._pm.register(module, name=plugin_name)
        except Exception as exc:  # noqa: BLE001 - any plugin failure stays local
            self._fail(ep.name, dist, version, exc, f"could not be imported ({ep.value})")
            return
        records: list[Registration] = []
        rejected: list[tuple[tuple[str, ...], Exception]] = []

        def register(name: str, target: Target, aliases: Iterable[str] = (),
                     api: Iterable[int] = (1, 0)) -> None:
            names = (name, *aliases)
            try:
                checked = _check_api(api, f"transport {name!r} of plugin {ep.name!r} "
                                          f"({dist} {version})")
            except ValueError as exc:
                # Only this transport fails; the plugin's others still register.
                rejected.append((names, exc))
                return
            records.append(Registration(name, target, names[1:], checked,
                                        plugin=ep.name, dist=dist, version=version))

        others = [p for p in self._pm.get_plugins() if p is not module]
        register_hook = self._pm.subset_hook_caller("kombu_register_transports",
                                                    remove_plugins=others)
        try:
            register_hook(register=register)
        except Exception as exc:  # noqa: BLE001 - any plugin failure stays local
            self._pm.unregister(module)
            self._fail(ep.name, dist, version, exc, "failed while registering its transports")
            return
        if dist:
            self._dists[dist] = version
        for names, api_error in rejected:
            failure = _Failure(ep.name, dist, version, api_error, "registered it for another "
                               "transport API", names=names)
            for key in names:
                self._failures.setdefault(key, failure)
        for reg in records:
            for key in (reg.name, *reg.aliases):
                self._claim(key, reg)

    def _fail(self, plugin: str, dist: str | None, version: str | None,
              exc: BaseException, reason: str) -> None:
        failure = _Failure(plugin, dist, version, exc, reason)
        self._failures.setdefault(plugin, failure)
        for alias, owner in SHIPPED.items():
            if dist and owner == dist:
                self._failures.setdefault(alias, failure)

    def _claim(self, key: str, reg: Registration) -> None:
        prev = self._plugins.get(key)
        if prev is None or prev is reg:
            self._plugins[key] = reg
            return
        # Deterministic: the distribution that ships ``key`` (kombu-redis for
        # "redis") beats any other; then the transport whose canonical name
        # is ``key`` beats one that only aliases it; otherwise the first in
        # entry-point order (sorted by entry-point name, then distribution).
        def rank(r: Registration) -> tuple[bool, bool]:
            return (SHIPPED.get(key) != r.dist, r.name != key)

        winner, loser = (reg, prev) if rank(reg) < rank(prev) else (prev, reg)
        self._plugins[key] = winner
        warnings.warn(TransportConflictWarning(
            f"Transport name {key!r} is claimed by {prev.origin} and by {reg.origin}; "
            f"using the one from {winner.origin}. To use the other, pass "
            f"transport={_describe(loser.target)}, or block the one in use with "
            f"{ENV_BLOCKED}={winner.dist or winner.plugin}."
        ), stacklevel=2)

    def hooks_for(self, name: Any) -> Any:
        """The plugins' hook relay if plugins may apply to transport ``name``, else None.

        A class, a ``'module:Class'`` path and a name this process defines
        (``TRANSPORT_ALIASES``, :meth:`register`) need no plugins, so entry
        points are not read for them; any other name loads the plugins first.
        """
        from kombu.transport import TRANSPORT_ALIASES

        if not self._loaded:
            if not isinstance(name, str) or ":" in name or "." in name \
                    or name in TRANSPORT_ALIASES or name in self._local:
                return None
            self.load_plugins()
        assert self._pm is not None
        return self._pm.hook

    # -- resolution --------------------------------------------------------
    def names(self) -> list[str]:
        """Every transport name (and alias) that resolves here."""
        from kombu.transport import TRANSPORT_ALIASES

        self.load_plugins()
        return sorted({*TRANSPORT_ALIASES, *self._local, *self._plugins})

    def registration(self, name: str) -> Registration | None:
        """The registration ``name`` maps to (in-process or plugin), if any."""
        reg = self._local.get(name)
        if reg is not None:
            return reg
        reg = self._plugins.get(name)
        if reg is None and not self._loaded:
            self.load_plugins()
            reg = self._plugins.get(name)
        return reg

    def check(self, transport: Any) -> None:
        """Raise what :meth:`resolve` would for a name that cannot resolve.

        The transport is not imported: a ``'module:Class'`` path and a name
        that resolves pass, so ``Connection(transport=name)`` fails when it
        is made, as ``Connection('name://')`` does, not at first use.
        """
        from kombu.transport import TRANSPORT_ALIASES

        if not isinstance(transport, str) or ":" in transport or "." in transport:
            return
        if transport in TRANSPORT_ALIASES or transport in self._cache:
            return
        if self.registration(transport) is None:
            raise self._missing(transport)

    def resolve(self, transport: Any) -> type:
        """Return the transport class for a name, path, class or factory."""
        try:
            return self._cache[transport]
        except (KeyError, TypeError):
            pass
        cls = self._resolve(transport)
        try:
            self._cache[transport] = cls
        except TypeError:  # unhashable factory
            pass
        return cls

    def _resolve(self, transport: Any) -> type:
        from kombu.transport import TRANSPORT_ALIASES

        if isinstance(transport, type):
            return transport
        if not isinstance(transport, str):
            if callable(transport):
                return _load_target(transport)
            raise TypeError(f"transport must be a name, a 'module:Class' path or a class, "
                            f"not {type(transport).__name__}")
        alias = TRANSPORT_ALIASES.get(transport)
        if alias is not None:
            return self._load_path(alias, transport)
        if ":" in transport or "." in transport:
            return self._load_path(transport, transport)
        reg = self.registration(transport)
        if reg is not None:
            return reg.load()
        raise self._missing(transport)

    def _load_path(self, target: Target, name: str) -> type:
        try:
            return _load_target(target)
        except Exception as exc:
            raise TransportLoadError(
                f"Transport {name!r} could not be loaded from {_describe(target)}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc

    def _missing(self, name: str) -> Exception:
        failure = self._failures.get(name)
        if failure is not None:
            err = TransportLoadError(
                f"Transport {name!r} is provided by {failure.who}, which {failure.reason}: "
                f"{failure.cause}. Other transports are unaffected; reinstall or upgrade "
                f"{failure.dist or failure.plugin}, or block it with "
                f"{ENV_BLOCKED}={failure.dist or failure.plugin}."
            )
            err.__cause__ = failure.error
            return err
        if name in self._blocked:
            return UnknownTransport(
                f"Transport {name!r} is blocked by {ENV_BLOCKED} "
                f"({self._blocked[name]}); remove it from that variable to use it."
            )
        installed = self.names()
        listing = ", ".join(installed) or "none"
        hint = ""
        if self._autoload_disabled:
            hint = (f" Plugins were not loaded because {ENV_DISABLE_AUTOLOAD} is set;"
                    " unset it or register the transport with kombu.register_transport().")
        dist = SHIPPED.get(name)
        if dist is not None and dist in self._dists:
            return UnknownTransport(
                f"{dist} {self._dists[dist]} is installed but provides no transport named "
                f"{name!r}; upgrade it: pip install -U {dist}. Installed transports: {listing}.")
        if dist is not None:
            return TransportNotInstalled(
                f"Transport {name!r} is provided by the {dist} distribution, which is "
                f"not installed: pip install {dist}. Installed transports: {listing}.{hint}"
            )
        import difflib

        # Suggest only names that work; a broken plugin whose name is close
        # is named with its error instead (its aliases are unknown, so the
        # name asked for may be one of them).
        broken = {f.plugin: f for f in self._failures.values() if not f.names}
        close = difflib.get_close_matches(name, sorted({*installed, *SHIPPED}), n=3, cutoff=0.6)
        suggestion = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
        near = difflib.get_close_matches(name, sorted(broken), n=3, cutoff=0.6)
        if near:
            hint += " " + " ".join(
                f"It may come from {broken[p].who}, which {broken[p].reason}: "
                f"{broken[p].cause}." for p in near)
        others = sorted(set(broken) - set(near))
        if others:
            hint += (f" {len(others)} other plugin{'s' if len(others) > 1 else ''} failed to "
                     "load; kombu.transport.registry.plugin_info() lists them.")
        if name in KOMBU5_ONLY:
            return UnknownTransport(
                f"No such transport: {name!r}. kombu 5.x bundles a {name!r} transport; "
                "kombu-core does not: install a plugin that provides it, or pass its "
                f"class as transport='module:Class'. Installed transports: {listing}.{hint}"
            )
        return UnknownTransport(
            f"No such transport: {name!r}.{suggestion} Installed transports: {listing}. "
            f"A third-party transport is selected by its plugin name once its "
            f"distribution is installed, or by transport='module:Class'.{hint}"
        )

    def reset(self) -> None:
        """Forget plugins and caches so entry points are read again (tests)."""
        with self._lock:
            self._plugins.clear()
            self._failures.clear()
            self._blocked.clear()
            self._dists.clear()
            self._cache.clear()
            self._loaded = False
            self._autoload_disabled = False
            self._pm = None

    def plugin_info(self) -> list[dict[str, Any]]:
        """Loaded and failed plugins: name, distribution, version, transports, error."""
        self.load_plugins()
        rows: dict[str, dict[str, Any]] = {}
        for key, reg in sorted(self._plugins.items()):
            row = rows.setdefault(reg.plugin or "", {
                "plugin": reg.plugin, "dist": reg.dist, "version": reg.version,
                "transports": [], "error": None})
            row["transports"].append(key)
        for key, failure in self._failures.items():
            if failure.names:
                row = rows.setdefault(failure.plugin, {
                    "plugin": failure.plugin, "dist": failure.dist,
                    "version": failure.version, "transports": [], "error": None})
                row.setdefault("failed", {})[key] = failure.cause
            elif key == failure.plugin:
                rows[key] = {"plugin": key, "dist": failure.dist,
                             "version": failure.version, "transports": [],
                             "error": f"{type(failure.error).__name__}: {failure.error}"}
        return list(rows.values())


registry = TransportRegistry()
