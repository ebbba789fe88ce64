"""Fuzz: damaged run folders (issue 18).  Every file of a real finished run removed,
truncated, replaced by random bytes or by valid JSON / CSV of the wrong shape: ``show``
and ``export`` end with exit 0 or 2 (one line), never a traceback, and no byte of any
other run folder changes; a resumed search (which starts Ray) on a handful of them too."""

from __future__ import annotations

import contextlib
import io
import shutil
from pathlib import Path

import pytest
from cli import run, snapshot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_search_e2e import search_args

from mbnas.cli import main

pytestmark = pytest.mark.slow  # the run folder comes from a real search

FILES = ("run.json", "study.db", "trials.csv", "best.json", "weights/*")
WRONG_JSON = ("[]", "null", "5", '"text"', "{}", '{"budget": -1}', '{"budget": "6M"}',
              '{"budget": 6000000, "winner": []}',
              '{"budget": 6000000, "winner": null, "pareto_front": {}}',
              '{"budget": 6000000, "references": [null]}',
              '{"budget": 6000000, "confirmation": {"protocol": {}, "rows": [], '
              '"verdict": {}}}')
WRONG_CSV = ("", "number,name\n", "a,b\n1,2\n",
             "number,name,role,state,arch,macs,params,val_acc\n1,,search,bogus,x,1,1,0.5\n",
             "number,name,role,state,arch,macs,params,val_acc\nx,,search,complete,a,1,1,0\n",
             "number,name,role,state,arch,macs,params,val_acc\n1,,search,complete\n")

damages = st.one_of(
    st.tuples(st.sampled_from(FILES), st.just("remove"), st.just(b"")),
    st.tuples(st.sampled_from(FILES), st.just("truncate"),
              st.floats(0, 0.99).map(lambda f: str(f).encode())),
    st.tuples(st.sampled_from(FILES), st.just("replace"), st.binary(max_size=300)),
    st.tuples(st.sampled_from(FILES), st.just("replace"),
              st.sampled_from(WRONG_JSON + WRONG_CSV).map(str.encode)),
)


def damage(folder: Path, name: str, how: str, data: bytes) -> None:
    path = next(iter(sorted(folder.glob(name))))
    if how == "remove":
        path.unlink()
    elif how == "truncate":
        content = path.read_bytes()
        path.write_bytes(content[: int(len(content) * float(data))])
    else:
        path.write_bytes(data)


def quietly(*argv: str) -> tuple[int, str]:
    """``mbnas ARGV`` in this process: its exit status and stderr (an exception other
    than the CLI's own handling escapes, and fails the test with its traceback)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(list(argv))
    return code, err.getvalue()


@pytest.fixture(scope="module")
def home(finished_run, tmp_path_factory) -> Path:
    """A folder with ``runs/other``, an untouched copy of the finished run, and the run to
    copy and damage (``base``)."""
    root = tmp_path_factory.mktemp("fuzz")
    shutil.copytree(finished_run, root / "base")
    shutil.copytree(finished_run, root / "runs" / "other")
    return root


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(hit=damages)
def test_show_and_export_of_a_damaged_run_end_in_one_line(home, hit):
    victim = home / "runs" / "victim"
    out = home / "out"
    for folder in (victim, out):
        shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(home / "base", victim)
    damage(victim, *hit)
    other = snapshot(home / "runs" / "other")
    for argv in (["show", str(victim)], ["export", str(victim), "--out", str(out)]):
        code, stderr = quietly(*argv)
        assert code in (0, 2), (argv, hit, stderr)
        if code == 2:
            assert len(stderr.strip().splitlines()) == 1 and "mbnas: error:" in stderr, stderr
    assert snapshot(home / "runs" / "other") == other


@pytest.mark.parametrize("hit", [
    ("study.db", "truncate", b"0.5"),
    ("study.db", "replace", b"[]"),
    ("trials.csv", "replace", WRONG_CSV[2].encode()),
    ("best.json", "replace", b"\x00\xff garbage"),
    ("weights/*", "remove", b""),
])
def test_a_resumed_search_on_a_damaged_run_ends_in_one_line(home, hit):
    victim = home / "runs" / "victim"
    shutil.rmtree(victim, ignore_errors=True)
    shutil.copytree(home / "base", victim)
    damage(victim, *hit)
    other = snapshot(home / "runs" / "other")
    args = search_args(home / "runs", "victim", 3, "--references", "none",
                       "--inject-faults", "1:raise", "--early-stopping")
    result = run(*args, cwd=home)
    assert result.returncode in (0, 2), result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    if result.returncode == 2:
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert snapshot(home / "runs" / "other") == other
