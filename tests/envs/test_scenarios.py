"""Scenario files: every shipped one loads; bad ones give one-line, named errors."""

from __future__ import annotations

import re
from pathlib import Path

import gymnasium as gym
import pytest
import yaml

import envs
from envs.scenario import SCENARIO_DIR, ScenarioError, load_scenario


def _write(tmp_path: Path, data: dict, name: str = "bad.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def _default_raw() -> dict:
    return yaml.safe_load((SCENARIO_DIR / "default.yaml").read_text())


def test_shipped_scenarios_load_and_cite_sources() -> None:
    names = envs.available_scenarios()
    assert {"default", "peak-contention", "outage", "agentic-surge", "launch-spike"} <= set(names)
    for name in names:
        sc = load_scenario(name)
        assert sc.name == name
        text = (SCENARIO_DIR / f"{name}.yaml").read_text()
        assert "docs/calibration.md" in text or sc.sources


def test_cited_calibration_sections_exist() -> None:
    """Every ``docs/calibration.md / <section>`` a scenario cites is a heading of the shipped file."""
    root = Path(__file__).resolve().parents[2]
    headings = re.findall(r"^#+ (.+?)\s*$", (root / "docs" / "calibration.md").read_text(), flags=re.M)
    cited = 0
    for path in sorted(SCENARIO_DIR.rglob("*.yaml")):
        text = path.read_text()
        assert not re.search(r"(?<!docs/)CALIBRATION\.md", text), f"{path.name}: cite docs/calibration.md"
        for section in re.findall(r"docs/calibration\.md / ([A-Za-z][A-Za-z -]*[A-Za-z])", text):
            cited += 1
            assert any(h == section or h.startswith(section + " (") for h in headings), \
                f"{path.name}: cites section {section!r}, not in docs/calibration.md ({headings})"
    assert cited >= 5


def test_base_inherits_and_named_lists_merge() -> None:
    sc = load_scenario("peak-contention")
    base = load_scenario("default")
    assert sc.tier_names == base.tier_names
    a = {p.name: p for p in sc.capacity.providers}
    assert a["cloud-a"].reclaim_peak_share == 0.40
    assert a["cloud-a"].contracted_gpus == base.capacity.providers[0].contracted_gpus


def test_unknown_field(tmp_path: Path) -> None:
    raw = _default_raw()
    raw["tiers"][1]["pricee"] = 3
    with pytest.raises(ScenarioError) as exc:
        load_scenario(_write(tmp_path, raw))
    msg = str(exc.value)
    assert "unknown field 'tiers[1].pricee'" in msg and "\n" not in msg


def test_wrong_type(tmp_path: Path) -> None:
    raw = _default_raw()
    raw["capacity"]["providers"][0]["contracted_gpus"] = "lots"
    with pytest.raises(ScenarioError, match=r"capacity\.providers\[0\]\.contracted_gpus = 'lots': input should be"):
        load_scenario(_write(tmp_path, raw))


def test_out_of_range(tmp_path: Path) -> None:
    raw = _default_raw()
    raw["tiers"][2]["price_usd_per_month"] = -5
    with pytest.raises(ScenarioError, match=r"tiers\[2\]\.price_usd_per_month = -5: .*greater than or equal to 0"):
        load_scenario(_write(tmp_path, raw))


def test_cross_reference_errors(tmp_path: Path) -> None:
    raw = _default_raw()
    raw["tiers"][0]["profile"] = "gaming"
    with pytest.raises(ScenarioError, match=r"tiers\[0\]\.profile = 'gaming': must be one of"):
        load_scenario(_write(tmp_path, raw))
    raw = _default_raw()
    raw["capacity"]["events"] = [{"provider": "cloud-z", "start_h": 1, "duration_h": 2}]
    with pytest.raises(ScenarioError, match=r"events\[0\]\.provider = 'cloud-z'"):
        load_scenario(_write(tmp_path, raw))


def test_step_must_divide_a_day(tmp_path: Path) -> None:
    raw = _default_raw()
    raw["time"]["step_minutes"] = 7
    with pytest.raises(ScenarioError, match=r"time\.step_minutes = 7.*must divide 1440"):
        load_scenario(_write(tmp_path, raw))


def test_missing_field(tmp_path: Path) -> None:
    raw = _default_raw()
    del raw["tiers"][0]["latency_target_s"]
    with pytest.raises(ScenarioError, match=r"field 'tiers\[0\]\.latency_target_s' is required"):
        load_scenario(_write(tmp_path, raw))


def test_unknown_scenario_name_lists_available() -> None:
    with pytest.raises(ScenarioError, match=r"unknown scenario 'nope': use one of \['agentic-surge'"):
        load_scenario("nope")
    with pytest.raises(ScenarioError):
        gym.make("Rationing-v0", scenario="nope")


def test_invalid_yaml(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: [unclosed\n")
    with pytest.raises(ScenarioError, match="is not valid YAML"):
        load_scenario(path)


def test_overrides_are_validated() -> None:
    with pytest.raises(ScenarioError, match=r"reward\.churn_weight = -1"):
        load_scenario("default", {"reward": {"churn_weight": -1}})


@pytest.mark.parametrize(("where", "value", "message"), [
    (("tiers", 4, "sla", "availability", "credits", 0, "credit_share"), 2,
     r"field tiers\[4\]\.sla\.availability\.credits\[0\]\.credit_share = 2: input should be less than or equal to 1"),
    (("tiers", 4, "sla", "availability", "credits", 1, "below"), 0.999,
     r"field tiers\[4\]\.sla\.availability\.credits\[1\]\.below = 0\.999: must be < credits\[0\]\.below = 0\.995"),
    (("tiers", 4, "sla", "availability", "threshold"), 0.99,
     r"field tiers\[4\]\.sla\.availability\.credits\[0\]\.below = 0\.995: must be <= threshold = 0\.99"),
    (("tiers", 4, "sla", "latency_attainment", "threshold"), 1.5,
     r"field tiers\[4\]\.sla\.latency_attainment\.threshold = 1\.5: input should be less than or equal to 1"),
    (("tiers", 4, "sla", "latency_attainment", "credits"), [],
     r"field tiers\[4\]\.sla\.latency_attainment\.credits = \[\]: list should have at least 1 item"),
    (("tiers", 4, "sla"), {}, r"field tiers\[4\]\.sla.*must declare availability, latency_attainment or both"),
    (("tiers", 4, "sla", "uptime"), 0.9, r"unknown field 'tiers\[4\]\.sla\.uptime'"),
    (("serving", "full_batch_speedup"), 100, r"serving\.full_batch_speedup = 100(\.0)?: must be <= max_batch = 64"),
    (("action", "burst"), "auto", r"field action\.burst = 'auto': input should be 'rule' or 'policy'"),
])
def test_v1_fields_are_validated(tmp_path: Path, where: tuple, value, message: str) -> None:
    raw = _default_raw()
    node = raw
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = value
    with pytest.raises(ScenarioError, match=message) as exc:
        load_scenario(_write(tmp_path, raw))
    assert "\n" not in str(exc.value)
