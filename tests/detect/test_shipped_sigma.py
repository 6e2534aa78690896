"""The shipped Sigma rules' prebuilt conversion (triage/data/shipped_sigma.json) is fresh, gives exactly the
rules a live conversion gives, and is ignored when it is not of the installed rule files."""

from __future__ import annotations

import json

import pytest

from triage.detect import sigma


@pytest.fixture
def fresh_cache():
    sigma._shipped_rule_set.cache_clear()
    yield
    sigma._shipped_rule_set.cache_clear()


def _live() -> sigma.RuleSet:
    return sigma.load_rules([*sorted(sigma.SHIPPED_RULES.glob("sigma_*.yml")), sigma.SHIPPED_RULES / "sigmahq"])


def test_prebuilt_conversion_is_what_the_build_tool_writes_now():
    assert sigma.CONVERTED.read_text(encoding="utf-8") == sigma.converted_shipped_rules(), \
        "run python3 tools/build_shipped_sigma.py"


def test_prebuilt_rules_equal_the_live_conversion(fresh_cache):
    live = _live()
    assert len(live.loaded) >= 100
    shipped = sigma.shipped_rules()
    assert shipped.loaded == live.loaded and shipped.unsupported == live.unsupported


def _altered_copy(tmp_path, key: str):
    data = json.loads(sigma.CONVERTED.read_text(encoding="utf-8"))
    data["key"] = key
    data["loaded"][0]["title"] = "altered in the prebuilt file"
    path = tmp_path / "shipped_sigma.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_prebuilt_file_is_read_when_its_key_matches(tmp_path, monkeypatch, fresh_cache):
    monkeypatch.setattr(sigma, "CONVERTED", _altered_copy(tmp_path, sigma.shipped_rules_key()))
    assert sigma.shipped_rules().loaded[0].title == "altered in the prebuilt file"


def test_prebuilt_file_of_other_rule_files_or_versions_is_ignored(tmp_path, monkeypatch, fresh_cache):
    monkeypatch.setattr(sigma, "CONVERTED", _altered_copy(tmp_path, "0" * 64))
    assert sigma.shipped_rules().loaded == _live().loaded


def test_missing_or_unreadable_prebuilt_file_means_a_live_conversion(tmp_path, monkeypatch, fresh_cache):
    broken = tmp_path / "shipped_sigma.json"
    broken.write_text("{not json", encoding="utf-8")
    for path in (tmp_path / "absent.json", broken):
        sigma._shipped_rule_set.cache_clear()
        monkeypatch.setattr(sigma, "CONVERTED", path)
        assert sigma.shipped_rules().loaded == _live().loaded
