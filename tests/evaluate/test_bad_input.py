"""Bad input to agents.evaluate, agents.tune and envs.calibrate: one line, exit 2, nothing written;
results.json says what was evaluated; --out refuses used folders unless --overwrite; bottom lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.evaluate.command import main as evaluate_main
from agents.rules.tune import main as tune_main
from envs.calibrate import main as calibrate_main

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = str(ROOT / "checkpoints" / "ppo-v0")
QUICK = ["--seeds", "2", "--days", "0.25", "--no-progress", "--scenario", "default"]


def _tree(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


@pytest.mark.parametrize("case", ["days0", "days_nan", "tuned_missing", "out_file", "out_used", "policy_utf8",
                                  "trace_error", "escaping_pointer"])
def test_evaluate_bad_input(case: str, tmp_path: Path, one_line_error) -> None:
    out = tmp_path / "out"
    argv = ["--policy", "static", "--out", str(out), *QUICK]
    if case == "days0":
        argv += ["--days", "0"]
    elif case == "days_nan":
        argv += ["--days", "nan"]
    elif case == "tuned_missing":
        argv += ["--tuned-file", str(tmp_path / "missing.json")]
    elif case == "out_file":
        out.write_text("x")
    elif case == "out_used":
        out.mkdir()
        (out / "results.md").write_text("old")
    elif case == "policy_utf8":
        run = tmp_path / "run"
        run.mkdir()
        (run / "run.json").write_bytes(b'{"format": "rationing-run\xff"}')
        argv += ["--policy", str(run)]
    elif case == "trace_error":
        (tmp_path / "t.csv").write_text("timestamp,input_tokens,output_tokens\n2,10,10\n1,10,10\n")
        (tmp_path / "s.yaml").write_text(f"base: default\ndemand:\n  trace:\n    path: {tmp_path / 't.csv'}\n")
        argv += ["--scenario", str(tmp_path / "s.yaml")]
    elif case == "escaping_pointer":
        import shutil

        run = tmp_path / "run"
        shutil.copytree(SHIPPED, run)
        (run / "best.json").write_text(json.dumps({"path": "../../other/checkpoints/best-000000524288"}))
        argv += ["--policy", str(run)]
    before = _tree(tmp_path)
    one_line_error(evaluate_main, argv)
    assert _tree(tmp_path) == before


def test_results_record_what_was_evaluated_and_the_bottom_line(tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    assert evaluate_main(["--policy", SHIPPED, "--env-version", "0", "--out", str(out), "--plots", "headline",
                          *QUICK]) == 0
    text = capsys.readouterr().out
    data = json.loads((out / "results.json").read_text())
    ev = data["evaluated"]
    assert ev["seeds"] == {"first": 1_000_000, "count": 2, "range": [1_000_000, 1_000_002]}
    assert ev["env_version"] == 0 and ev["date"] and "commit" in ev
    ppo = next(p for p in ev["policies"] if p["kind"] == "checkpoint")
    assert ppo["checkpoint_step"] == 524288 and ppo["spec"] == SHIPPED
    line = next(x for x in text.splitlines() if x.startswith("**default: ppo-v0"))
    assert ("beats fair-share by" in line or "does not beat fair-share" in line) and "over 2 seeds" in line
    assert sorted(p.name for p in out.glob("*.png")) == ["headline.png", "margin_vs_attainment.png"]
    # --overwrite replaces the evaluation and clears stale files
    (out / "timeseries_old.png").write_bytes(b"stale")
    assert evaluate_main(["--policy", "static", "--out", str(out), "--overwrite", "--no-plots", *QUICK]) == 0
    assert not list(out.glob("*.png"))


def test_tune_and_calibrate_bad_input(tmp_path: Path, one_line_error) -> None:
    trace = tmp_path / "t.csv"
    trace.write_text("timestamp,input_tokens,output_tokens\n2,10,10\n1,10,10\n")
    assert "must be >= 1" in one_line_error(tune_main, ["--samples", "0", "--out", str(tmp_path / "t.json")])
    frag = str(tmp_path / "f.yaml")
    for argv, message in [
        ([str(trace), "--out", frag], "before the previous row"),
        ([str(trace), "--out", frag, "--start-weekday", "9"], "--start-weekday = 9"),
        ([str(trace)], "--out"),
        ([str(trace), "--out", str(tmp_path)], "--out"),
    ]:
        assert message in one_line_error(calibrate_main, argv)
    trace.write_bytes(b"timestamp,input_tokens,output_tokens\n1,10,1e39\n")
    assert "larger than" in one_line_error(calibrate_main, [str(trace), "--out", frag])
    trace.write_bytes(b"timestamp,input_tokens,output_tokens\n1,10,10\xff\n")
    assert "not UTF-8" in one_line_error(calibrate_main, [str(trace), "--out", frag])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv"]


def test_a_bad_row_fails_before_the_rest_is_read(tmp_path: Path) -> None:
    """Streaming: the error names row 2 although the file goes on (a generator would never end)."""
    from envs.trace import TraceError, load_trace

    path = tmp_path / "big.csv"
    with open(path, "w") as f:
        f.write("timestamp,input_tokens,output_tokens\n5,1,1\n4,1,1\n")
        f.writelines(f"{i},1,1\n" for i in range(10, 200_010))
    with pytest.raises(TraceError, match="row 2"):
        load_trace(path)


_CELL = st.one_of(st.integers(-5, 10**6).map(str), st.floats(allow_nan=True, allow_infinity=True).map(repr),
                  st.sampled_from(["", "x", "1e39", "1e308", "-0", "nan"]))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(_CELL, _CELL, _CELL), min_size=0, max_size=6))
def test_random_trace_rows_fit_or_give_one_line(rows, tmp_path: Path, capsys) -> None:
    trace = tmp_path / "r.csv"
    trace.write_text("timestamp,input_tokens,output_tokens\n" + "".join(",".join(r) + "\n" for r in rows))
    frag = tmp_path / "r.yaml"
    frag.unlink(missing_ok=True)
    code = calibrate_main([str(trace), "--out", str(frag)])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    if code == 2:
        assert len(captured.err.strip().splitlines()) == 1 and not frag.exists()
    else:
        assert code == 0 and frag.is_file()
