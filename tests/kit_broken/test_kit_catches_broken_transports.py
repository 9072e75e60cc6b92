"""The conformance kit fails every deliberately broken transport, each on the right test.

One pytest subprocess runs the kit (as a plugin author would: the
``pytest_plugins`` line and ``from kombu.testing.suite import *``) against
:class:`kit_broken.transports.Reference` and each transport of
:data:`kit_broken.transports.BROKEN`, selecting the tests of
:data:`kit_broken.transports.CAUGHT_BY`.  The reference must pass them all;
each broken transport must fail its test, with the values compared shown.
"""

from __future__ import annotations

import os
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from helpers import run

from kit_broken.transports import CAUGHT_BY

CONFTEST = '''\
import kombu
from kit_broken.transports import BROKEN, Reference

pytest_plugins = ["kombu.testing.pytest_plugin"]

kombu.register_transport("reference", Reference)
for name, cls in BROKEN.items():
    kombu.register_transport(name, cls)
'''

TEST_MODULE = '''\
import pytest
from kit_broken.transports import BROKEN
from kombu.testing import Requirements
from kombu.testing.suite import *  # noqa: F401,F403


@pytest.fixture(params=["reference", *BROKEN])
def transport_url(request):
    return f"{request.param}://"


@pytest.fixture
def transport_unreachable_url(transport_url):
    return transport_url + "unreachable/"


@pytest.fixture
def transport_requirements():
    return Requirements.lacking(multiprocess="in-process store", priorities="one deque")
'''


def _outcomes(report: Path) -> dict[str, tuple[str, str]]:
    """``{'Class::test[param]': (outcome, message)}`` from a JUnit XML report."""
    out: dict[str, tuple[str, str]] = {}
    for case in ET.parse(report).iter("testcase"):
        key = f"{case.get('classname', '').rpartition('.')[2]}::{case.get('name')}"
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            element = case.find(tag)
            if element is not None:
                outcome = tag
                message = f"{element.get('message', '')}\n{element.text or ''}"
                break
        out[key] = outcome, message
    return out


def test_the_kit_fails_every_broken_transport(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_kit.py").write_text(TEST_MODULE)
    tests_dir = Path(__file__).resolve().parents[1]
    selected = [f"test_kit.py::{test}[{name}]" for name, test in CAUGHT_BY.items()]
    selected += [f"test_kit.py::{test}[reference]" for test in sorted(set(CAUGHT_BY.values()))]
    report = tmp_path / "report.xml"
    proc = run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--kombu-wait=2",
                f"--junitxml={report}", "-o", "junit_family=xunit2", *selected],
               cwd=str(tmp_path), timeout=120, check=False,
               env={"PYTHONPATH": os.pathsep.join([str(tests_dir), *sys.path])})
    assert report.exists(), f"pytest wrote no report:\n{proc.stdout}\n{proc.stderr}"
    outcomes = _outcomes(report)
    reference = {k: v for k, v in outcomes.items() if k.endswith("[reference]")}
    assert len(reference) == len(set(CAUGHT_BY.values()))
    assert {k: o for k, (o, _) in reference.items() if o != "passed"} == {}, proc.stdout
    missed = {}
    for name, test in CAUGHT_BY.items():
        outcome, message = outcomes.get(f"{test}[{name}]", ("not run", proc.stdout))
        if outcome != "failure":
            missed[name] = (outcome, message[-2000:])
        else:
            # Assertion rewriting is on: a failed assert shows what was
            # compared, not a bare AssertionError.
            first_line = message.strip().splitlines()[0]
            assert first_line != "AssertionError", f"{name}: bare failure:\n{message}"
            if first_line.startswith("AssertionError"):
                assert re.search(r"^E +(AssertionError: )?assert ", message, re.M), message
    assert missed == {}, "the kit did not catch these broken transports"
    assert proc.returncode == 1
