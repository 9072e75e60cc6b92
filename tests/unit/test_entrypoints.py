"""The entry-point scanner (kombu.utils.entrypoints) on metadata directories."""

from __future__ import annotations

from pathlib import Path

from kombu.utils.entrypoints import (
    Distribution,
    dist_name,
    dist_version,
    normalize_name,
    parse_entry_points,
    scan_entry_points,
)

ENTRY_POINTS = """
# a comment
[console_scripts]
tool = pkg.cli:main

[kombu.transports]
alpha = pkg_alpha.plugin
beta=pkg_beta.plugin:hooks
; another comment
"""


def _dist(root: Path, dirname: str, text: str | None) -> None:
    folder = root / dirname
    folder.mkdir(parents=True)
    if text is not None:
        (folder / "entry_points.txt").write_text(text, encoding="utf-8")


def test_parse_entry_points_reads_one_group() -> None:
    dist = Distribution("pkg", "1.0")
    eps = parse_entry_points(ENTRY_POINTS, "kombu.transports", dist)
    assert [(ep.name, ep.value, ep.dist) for ep in eps] == [
        ("alpha", "pkg_alpha.plugin", dist), ("beta", "pkg_beta.plugin:hooks", dist)]
    assert parse_entry_points(ENTRY_POINTS, "nothing", dist) == []


def test_normalize_name() -> None:
    assert normalize_name(" Kombu_Redis.Extra ") == "kombu-redis-extra"


def test_scan_reads_dist_info_and_egg_info_first_on_path_wins(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    _dist(first, "kombu_thing-2.0.dist-info", "[kombu.transports]\nthing = thing.plugin\n")
    _dist(first, "Other.Pkg-0.3-py3.11.egg-info", "[kombu.transports]\nother = o.p\n")
    _dist(first, "no_eps-1.0.dist-info", None)
    _dist(second, "Kombu_Thing-1.0.dist-info", "[kombu.transports]\nold = thing.old\n")
    (first / "not-metadata").mkdir()
    found = scan_entry_points("kombu.transports", [str(first), str(second),
                                                   str(tmp_path / "missing")])
    assert found is not None
    rows = sorted((ep.name, ep.value, dist_name(ep), dist_version(ep)) for ep in found)
    assert rows == [("other", "o.p", "other-pkg", "0.3"),
                    ("thing", "thing.plugin", "kombu-thing", "2.0")]


def test_scan_gives_up_on_a_zip_file(tmp_path: Path) -> None:
    archive = tmp_path / "deps.zip"
    archive.write_bytes(b"PK")
    assert scan_entry_points("kombu.transports", [str(archive)]) is None


def test_entry_point_load_imports_the_named_object(tmp_path: Path) -> None:
    dist = Distribution("x", "1")
    (ep,) = parse_entry_points("[g]\nj = json:JSONDecoder.decode\n", "g", dist)
    import json

    assert ep.load() is json.JSONDecoder.decode
    assert dist_name(object()) is None and dist_version(object()) is None
