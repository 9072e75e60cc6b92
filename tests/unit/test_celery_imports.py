"""Every ``from kombu... import ...`` name Celery 5.7 uses imports from kombu-core.

The list below was extracted from Celery 5.7.0's source with :mod:`ast`.
When Celery's source is on the path (found without importing it), the
test extracts the list again and checks that nothing new appeared.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
from pathlib import Path

import pytest

#: module -> names Celery 5.7 imports from it, all provided by kombu-core.
CELERY_IMPORTS: dict[str, set[str]] = {
    "kombu": {"Connection", "Consumer", "Exchange", "Producer", "Queue", "eventloop",
              "pidbox", "pools", "serialization"},
    "kombu.abstract": {"Object"},
    "kombu.clocks": {"LamportClock", "timetuple"},
    "kombu.common": {"Broadcast", "QoS", "ignore_errors", "maybe_declare", "oid_from"},
    "kombu.compression": {"compress", "decompress", "encoders", "get_encoder"},
    "kombu.connection": {"maybe_channel"},
    "kombu.entity": {"Exchange", "Queue"},
    "kombu.exceptions": {"ContentDisallowed", "DecodeError", "EncodeError", "LimitExceeded",
                         "OperationalError"},
    "kombu.log": {"LOG_LEVELS", "get_logger"},
    "kombu.matcher": {"match"},
    "kombu.message": {"Message"},
    "kombu.mixins": {"ConsumerMixin"},
    "kombu.pidbox": {"Mailbox"},
    "kombu.serialization": {"disable_insecure_serializers", "dumps", "loads", "pickle",
                            "pickle_protocol", "prepare_accept_content", "registry"},
    "kombu.transport.native_delayed_delivery": {
        "bind_queue_to_native_delayed_delivery_exchange", "calculate_routing_key",
        "declare_native_delayed_delivery_exchanges_and_queues"},
    "kombu.utils": {"cached_property", "json", "symbol_by_name"},
    "kombu.utils.compat": {"_detect_environment", "detect_environment", "maybe_fileno",
                           "register_after_fork"},
    "kombu.utils.encoding": {"bytes_to_str", "ensure_bytes", "from_utf8", "safe_repr",
                             "safe_str", "set_default_encoding_file", "str_to_bytes"},
    "kombu.utils.functional": {"LRUCache", "dictfilter", "fxrange", "is_list", "lazy",
                               "maybe_evaluate", "maybe_list", "memoize", "reprcall",
                               "retry_over_time"},
    "kombu.utils.imports": {"symbol_by_name"},
    "kombu.utils.json": {"dumps"},
    "kombu.utils.limits": {"TokenBucket"},
    "kombu.utils.objects": {"cached_property"},
    "kombu.utils.url": {"maybe_sanitize_url", "parse_url", "url_to_parts"},
    "kombu.utils.uuid": {"uuid"},
}

#: Imported by Celery but provided elsewhere: the event loop and eventio
#: (kombu.asynchronous, kombu.utils.eventio), private URL helpers and the
#: Redis error classes (other parts of this project), and kombu's Azure
#: transport (not shipped).  Not checked here.
ELSEWHERE: dict[str, set[str]] = {
    "kombu.asynchronous": {"ERR", "Hub", "WRITE", "get_event_loop", "set_event_loop", "timer"},
    "kombu.asynchronous.semaphore": {"DummyLock", "LaxBoundedSemaphore"},
    "kombu.asynchronous.timer": {"Entry", "Timer", "logger", "to_timestamp"},
    "kombu.utils.eventio": {"SELECT_BAD_FD"},
    "kombu.utils.url": {"_parse_url", "urlparse"},
    "kombu.transport.redis": {"get_redis_error_classes"},
    "kombu.transport.azurestoragequeues": {"Transport"},
}

#: Further names Celery reaches through modules it imports (kombu.common.eventloop).
ALSO_NEEDED: dict[str, set[str]] = {"kombu.common": {"eventloop"}}


def _provides(module: str, name: str) -> bool:
    mod = importlib.import_module(module)
    if hasattr(mod, name):
        return True
    try:  # ``from kombu import pidbox``: a submodule
        importlib.import_module(f"{module}.{name}")
    except ImportError:
        return False
    return True


@pytest.mark.parametrize("module", sorted(CELERY_IMPORTS))
def test_celery_names_import(module: str) -> None:
    names = CELERY_IMPORTS[module] | ALSO_NEEDED.get(module, set())
    missing = sorted(name for name in names if not _provides(module, name))
    assert missing == [], f"kombu-core lacks {module}: {missing}"


def test_from_import_statements_work() -> None:
    """The literal statements, as Celery writes them."""
    for module, names in CELERY_IMPORTS.items():
        code = f"from {module} import {', '.join(sorted(names))}"
        exec(compile(code, "<celery-imports>", "exec"), {})


def extract_kombu_imports(root: Path) -> dict[str, set[str]]:
    """``from kombu... import`` names of every Python file under ``root``."""
    found: dict[str, set[str]] = {}
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if (isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
                    and (node.module == "kombu" or node.module.startswith("kombu."))):
                found.setdefault(node.module, set()).update(a.name for a in node.names)
    return found


def test_extractor_reads_from_imports(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text(
        "from kombu import Queue, pidbox\nfrom kombu.utils.json import dumps as d\n"
        "from .kombu import nope\nimport kombu\n", encoding="utf-8")
    assert extract_kombu_imports(tmp_path) == {"kombu": {"Queue", "pidbox"},
                                               "kombu.utils.json": {"dumps"}}


def test_list_matches_installed_celery() -> None:
    spec = importlib.util.find_spec("celery")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("Celery is not installed here: the fixed list above is what is checked")
    root = Path(next(iter(spec.submodule_search_locations)))
    found = extract_kombu_imports(root)
    unknown = {module: sorted(names - CELERY_IMPORTS.get(module, set())
                              - ELSEWHERE.get(module, set()))
               for module, names in found.items()}
    unknown = {m: n for m, n in unknown.items() if n}
    assert unknown == {}, f"Celery imports names this list does not know: {unknown}"
