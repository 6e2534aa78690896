"""Stealth checks on the test image: task files and the TaskCache collected through dissect, joined by
the correlator, judged by check_stealth. Each stealth case gives exactly its hit with its evidence;
consistent stock tasks give none."""

from __future__ import annotations

import hashlib
import os

from zoneinfo import ZoneInfo

import pytest
from dissect.target import Target

from test_images import taskcache_scenarios as scenarios
from test_images.windows_tree import (
    ENCODED_PS_TASK, EXTERNAL_ENTITY_TASK, STOCK_TASKS, TRUNCATED_TASK, all_tasks,
)
from triage.collect import Context, Source
from triage.collect import taskcache, windows_tasks
from triage.correlate import correlate
from triage.detect import JudgeContext, build_findings
from triage.detect.baseline import load_baseline
from triage.detect.stealth import check_stealth, principal_matches
from triage.records import EvidenceItem, EvidenceRef, Gap, HostInfo, TaskDefinition
from triage.stores import StoreIndex

TASKCACHE = "HKLM\\SOFTWARE\\" + scenarios.TASKCACHE
SHA = "ab" * 32


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    work = tmp_path_factory.mktemp("stealth")
    tasks = sorted(all_tasks() + scenarios.stealth_task_files(), key=lambda t: t.name.lower())
    clean = scenarios.software_hive(tasks, work / "build")
    dirty = scenarios.dirty_software_hive(clean, scenarios.log_only_keys(tasks), work / "build")
    root = work / "evidence"
    config = root / "Windows" / "System32" / "config"
    config.mkdir(parents=True)
    for name, data in (("SOFTWARE", dirty.primary), ("SOFTWARE.LOG1", dirty.log1), ("SOFTWARE.LOG2", dirty.log2)):
        (config / name).write_bytes(data)
    for task in tasks:
        path = root / task.file_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(task.data)
        os.utime(path, (task.times.accessed.timestamp(), task.times.modified.timestamp()))
    return {"root": root, "tasks": {t.name: t for t in tasks}}


@pytest.fixture(scope="module")
def judged(image):
    ctx = Context(quiet=True)
    source = Source(ref=EvidenceRef(path=str(image["root"]), kind="dir", sha256=SHA), target=Target.open(image["root"]),
                    tz=ZoneInfo("Europe/Berlin"), os_family="windows", host=HostInfo(hostname="WS-FIN-042"))
    records = [r for module in (windows_tasks, taskcache) for r in module.collect(source, ctx) if isinstance(r, TaskDefinition)]
    entities, _ = correlate(records, [], [], [])
    judge = JudgeContext(hunt_date="20240314", gaps=ctx.gaps, baseline=load_baseline(), stores=StoreIndex(ctx.stores, ctx.gaps))
    hits = {e.task: check_stealth(e, judge) for e in entities}
    return {"entities": {e.task: e for e in entities}, "hits": hits, "judge": judge, "records": records}


def only_hit(judged, task: str):
    [hit] = judged["hits"][task]
    return hit


def registry_record(judged, task: str) -> TaskDefinition:
    [record] = [d for d in judged["entities"][task].definitions if d.source == "taskcache"]
    return record


def file_item(image, task: str) -> EvidenceItem:
    planted = image["tasks"][task]
    return EvidenceItem(source="task XML file", location=f"sysvol/{planted.file_path}",
                        value=f"sha256 {hashlib.sha256(planted.data).hexdigest()}",
                        time=planted.times.modified.strftime("%Y-%m-%dT%H:%M:%SZ"), evidence_sha256=SHA)


def store_item(image, store: str, what: str) -> EvidenceItem:
    """The store an absence-based hit names as read: where it looked and for which host."""
    location, label = {"taskcache": (TASKCACHE, "TaskCache (SOFTWARE hive)"),
                       "task_files": ("sysvol/Windows/System32/Tasks", "task folders (System32\\Tasks, Windows\\Tasks)")}[store]
    return EvidenceItem(source=f"store examined: {label}", location=location, value=f"read for host WS-FIN-042; {what}")


EXPECTED_RULES = {
    scenarios.TARRASK_TASK: ["taskcache_tree_without_sd"],
    scenarios.INDEX_ZERO_TASK: ["taskcache_index_tampered"],
    scenarios.INDEX_DELETED_TASK: ["taskcache_index_tampered"],
    scenarios.GHOST_TASK: ["taskcache_registry_only"],
    scenarios.XML_ONLY_TASK: ["task_file_without_registry"],
    scenarios.REWRITTEN_TASK: ["taskcache_differs_from_xml"],
    scenarios.EDITED_XML_TASK: ["taskcache_hash_mismatch"],
    scenarios.TREE_ONLY_TASK: ["taskcache_tree_id_without_tasks_key"],
    scenarios.TASKS_ONLY_TASK: ["taskcache_tasks_key_without_tree"],
    scenarios.LOG_ONLY_TASK: ["taskcache_only_in_transaction_log"],
    ENCODED_PS_TASK: ["task_hidden_flag"],  # Register-ScheduledTask -Hidden: XML and JobBucket agree
    TRUNCATED_TASK: ["task_file_without_registry"],  # files Windows could not have registered
    EXTERNAL_ENTITY_TASK: ["task_file_without_registry"],
}


def test_each_stealth_case_gives_exactly_its_hit_and_nothing_else_is_hit(judged):
    found = {task: [h.rule for h in hits] for task, hits in judged["hits"].items() if hits}
    assert found == EXPECTED_RULES


def test_no_hit_on_consistent_stock_tasks_including_the_ones_windows_hides(judged):
    for task in STOCK_TASKS:
        assert judged["hits"][task] == [], task
    hidden_stock = sorted(t for t in STOCK_TASKS if registry_record(judged, t).hidden)
    assert hidden_stock == [r"\Microsoft\Windows\Diagnosis\Scheduled", r"\Microsoft\Windows\Registry\RegIdleBackup"]


def test_tarrask_tree_key_without_sd_is_critical_with_key_evidence(judged, image):
    hit = only_hit(judged, scenarios.TARRASK_TASK)
    tree = f"{TASKCACHE}\\Tree\\Microsoft\\Windows\\WinUpdate\\WinUpdate"
    assert (hit.risk, hit.techniques) == ("Critical", ["T1564", "T1070.009", "T1112"])
    assert hit.evidence == [
        EvidenceItem(source="TaskCache Tree key", location=f"{tree}\\SD", value="(value missing)", time="2024-03-12T15:02:58Z",
                     evidence_sha256=SHA),
        EvidenceItem(source="TaskCache Tree key", location=f"{tree}\\Id", value=scenarios.task_guid(scenarios.TARRASK_TASK),
                     time="2024-03-12T15:02:58Z", evidence_sha256=SHA),
        file_item(image, scenarios.TARRASK_TASK),
        store_item(image, "taskcache", "the Tree key has no SD value"),
    ]
    assert hit.action.startswith(r"Disable and remove \Microsoft\Windows\WinUpdate\WinUpdate")


def test_index_zero_and_deleted_index_are_high(judged):
    zero = only_hit(judged, scenarios.INDEX_ZERO_TASK)
    deleted = only_hit(judged, scenarios.INDEX_DELETED_TASK)
    assert (zero.risk, deleted.risk) == ("High", "High")
    assert zero.evidence[0] == EvidenceItem(
        source="TaskCache Tree key", location=f"{TASKCACHE}\\Tree\\Microsoft\\Windows\\Maintenance\\SvcHealthCheck\\Index",
        value="0x00000000 (0)", time="2024-03-12T15:05:01Z", evidence_sha256=SHA)
    assert deleted.evidence[0] == EvidenceItem(
        source="TaskCache Tree key", location=f"{TASKCACHE}\\Tree\\Microsoft\\Windows\\Chkdsk\\SyncHealth\\Index",
        value="(value missing)", time="2024-03-12T15:06:40Z", evidence_sha256=SHA)
    assert "is missing" in deleted.title and "is 0" in zero.title


def test_ghosttask_registry_only_task_is_critical_with_its_fingerprints(judged):
    hit = only_hit(judged, scenarios.GHOST_TASK)
    guid = scenarios.task_guid(scenarios.GHOST_TASK)
    record = registry_record(judged, scenarios.GHOST_TASK)
    assert hit.risk == "Critical"
    assert hit.evidence == [
        EvidenceItem(source="TaskCache Tree key", location=f"{TASKCACHE}\\Tree\\OneDrive Standalone Sync Service\\Id",
                     value=guid, time="2024-03-12T15:22:40Z", evidence_sha256=SHA),
        EvidenceItem(source="TaskCache Tasks key", location=f"{TASKCACHE}\\Tasks\\{guid}\\Actions",
                     value=record.details["actions_hex"], time="2024-03-12T15:22:40Z", evidence_sha256=SHA),
        EvidenceItem(source="GhostTask fingerprints", location=f"{TASKCACHE}\\Tasks\\{guid}",
                     value="no Hash value; no Schema value; JobBucket CRC32 is 0; zeros where Windows leaves uninitialised "
                           "bytes; trigger start 1992-05-01; Tree SD has an empty DACL; DynamicInfo creation time is local "
                           "time, not UTC",
                     time="2024-03-12T15:22:40Z", evidence_sha256=SHA),
        store_item(image, "task_files", "no task file for this task"),
    ]
    assert [a.command for a in record.actions] == [scenarios.GHOST_COMMAND]


def test_task_file_without_registry_entry_is_medium(judged, image):
    hit = only_hit(judged, scenarios.XML_ONLY_TASK)
    assert (hit.risk, hit.evidence) == ("Medium", [file_item(image, scenarios.XML_ONLY_TASK),
                                                  store_item(image, "taskcache", "no TaskCache entry for this task")])
    assert [only_hit(judged, t).risk for t in (TRUNCATED_TASK, EXTERNAL_ENTITY_TASK)] == ["Low", "Low"]


def test_task_file_without_registry_is_not_judged_when_taskcache_was_not_read(judged):
    task_folders_only = [s for s in judged["judge"].stores.stores if s.store == "task_files"]
    blind = JudgeContext(hunt_date="20240314", baseline=load_baseline(), stores=StoreIndex(task_folders_only))
    assert check_stealth(judged["entities"][scenarios.XML_ONLY_TASK], blind) == []


def test_registry_only_task_is_no_finding_when_the_task_folders_were_not_read(judged):
    registry_only = [s for s in judged["judge"].stores.stores if s.store == "taskcache"]
    blind = JudgeContext(hunt_date="20240314", baseline=load_baseline(), stores=StoreIndex(registry_only))
    hits = check_stealth(judged["entities"][scenarios.GHOST_TASK], blind)
    # the GhostTask fingerprints are in the registry values themselves: still said, but not as "no task file"
    assert [(h.rule, h.risk) for h in hits] == [("taskcache_ghosttask_fingerprints", "High")]
    assert "task folders (System32\\Tasks, Windows\\Tasks) not examined (only TaskCache (SOFTWARE hive) given)" in hits[0].title


def test_missing_sd_is_not_claimed_when_a_gap_covers_the_taskcache(judged):
    stores = judged["judge"].stores
    hive_gap = Gap(evidence=stores.stores[0].evidence, location=TASKCACHE, problem="hive bin at 0x3000 unreadable")
    damaged = JudgeContext(hunt_date="20240314", baseline=load_baseline(), stores=StoreIndex(stores.stores, [hive_gap]))
    assert check_stealth(judged["entities"][scenarios.TARRASK_TASK], damaged) == []
    other_file_gap = Gap(evidence=hive_gap.evidence, location="sysvol/Windows/System32/Tasks/Other", problem="unreadable")
    intact = JudgeContext(hunt_date="20240314", baseline=load_baseline(), stores=StoreIndex(stores.stores, [other_file_gap]))
    assert [h.rule for h in check_stealth(judged["entities"][scenarios.TARRASK_TASK], intact)] == ["taskcache_tree_without_sd"]


def test_rewritten_registry_actions_are_high_with_both_commands(judged, image):
    hit = only_hit(judged, scenarios.REWRITTEN_TASK)
    record = registry_record(judged, scenarios.REWRITTEN_TASK)
    guid = scenarios.task_guid(scenarios.REWRITTEN_TASK)
    assert (hit.risk, hit.contradicts) == ("High", True)
    assert hit.evidence == [
        EvidenceItem(source="TaskCache Actions (what the service runs)", location=f"{TASKCACHE}\\Tasks\\{guid}\\Actions",
                     value=f"exec {scenarios.REWRITTEN_COMMAND} (raw {record.details['actions_hex']})",
                     time="2024-03-12T15:10:27Z", evidence_sha256=SHA),
        EvidenceItem(source="task XML Actions", location=f"sysvol/{image['tasks'][scenarios.REWRITTEN_TASK].file_path}",
                     value=r"exec C:\Program Files\Common Files\Microsoft Shared\ClickToRun\OfficeC2RClient.exe "
                           "/frequentupdate SCHEDULEDTASK", evidence_sha256=SHA),
    ]


def test_edited_xml_gives_an_unconfirmed_low_hash_finding_only(judged, image):
    hit = only_hit(judged, scenarios.EDITED_XML_TASK)
    guid = scenarios.task_guid(scenarios.EDITED_XML_TASK)
    assert hit.risk == "Low" and hit.title.startswith("UNCONFIRMED: TaskCache Hash and CRC32 do not match the task file.")
    assert "SHA-256 / CRC32 of the file bytes is the working assumption" in hit.title
    assert "not proof of tampering on its own" in hit.title
    location = f"{TASKCACHE}\\Tasks\\{guid}"
    assert [(e.source, e.location) for e in hit.evidence] == [
        ("TaskCache Hash", f"{location}\\Hash"), ("TaskCache JobBucket CRC32", f"{location}\\Triggers"),
        ("TaskCache Author (as registered)", f"{location}\\Author"),
        ("task XML RegistrationInfo/Author", f"sysvol/{image['tasks'][scenarios.EDITED_XML_TASK].file_path}"),
        ("task XML file", f"sysvol/{image['tasks'][scenarios.EDITED_XML_TASK].file_path}"),
    ]
    assert [e.value for e in hit.evidence[2:4]] == ["WS-FIN-042\\jsmith", scenarios.EDITED_NEW_AUTHOR]


def test_orphan_tree_id_and_orphan_tasks_key_are_medium(judged, image):
    tree = only_hit(judged, scenarios.TREE_ONLY_TASK)
    tasks = only_hit(judged, scenarios.TASKS_ONLY_TASK)
    assert (tree.risk, tasks.risk) == ("Medium", "Medium")
    assert tree.evidence == [EvidenceItem(
        source="TaskCache Tree key", location=f"{TASKCACHE}\\Tree\\Microsoft\\Windows\\Maintenance\\LegacyCleanup\\Id",
        value=scenarios.task_guid(scenarios.TREE_ONLY_TASK), time="2024-03-12T15:35:20Z", evidence_sha256=SHA),
        store_item(image, "taskcache", "no Tasks key with this GUID")]
    assert tasks.evidence[0] == EvidenceItem(
        source="TaskCache Tasks key", location=f"{TASKCACHE}\\Tasks\\{scenarios.task_guid(scenarios.TASKS_ONLY_TASK)}\\Path",
        value=scenarios.TASKS_ONLY_TASK, time="2024-03-12T15:40:03Z", evidence_sha256=SHA)


def test_task_only_in_transaction_logs_is_high_and_names_the_log_entries(judged):
    hit = only_hit(judged, scenarios.LOG_ONLY_TASK)
    assert hit.risk == "High"
    assert (hit.evidence[0].source, hit.evidence[0].location, hit.evidence[0].time) == (
        "SOFTWARE transaction log entries", "SOFTWARE.LOG1 entry 2 at 0x200, SOFTWARE.LOG1 entry 3 at 0x6400",
        "2024-03-14T08:58:02Z")
    assert hit.evidence[1].location.endswith(f"\\Tasks\\{scenarios.task_guid(scenarios.LOG_ONLY_TASK)}\\Actions")


def test_hidden_flag_cites_xml_and_jobbucket(judged, image):
    hit = only_hit(judged, ENCODED_PS_TASK)
    assert hit.risk == "Medium"
    assert [(e.source, e.value) for e in hit.evidence] == [
        ("task XML Settings/Hidden", "<Hidden>true</Hidden>"),
        ("TaskCache JobBucket flags", "flags 0x42c12138 (Hidden 0x800000 set)"),
    ]


def test_findings_merge_hits_per_task_and_keep_risk(judged):
    judged_pairs = [(judged["entities"][t], judged["hits"][t]) for t in EXPECTED_RULES]
    findings = {f.task: f for f in build_findings(judged_pairs, judged["judge"])}
    assert {t: f.risk_level for t, f in findings.items()} == {
        scenarios.TARRASK_TASK: "Critical", scenarios.GHOST_TASK: "Critical", scenarios.INDEX_ZERO_TASK: "High",
        scenarios.INDEX_DELETED_TASK: "High", scenarios.REWRITTEN_TASK: "High", scenarios.LOG_ONLY_TASK: "High",
        scenarios.XML_ONLY_TASK: "Medium", scenarios.TREE_ONLY_TASK: "Medium", scenarios.TASKS_ONLY_TASK: "Medium",
        ENCODED_PS_TASK: "Medium", scenarios.EDITED_XML_TASK: "Low", TRUNCATED_TASK: "Low", EXTERNAL_ENTITY_TASK: "Low",
    }
    assert findings[scenarios.GHOST_TASK].user == "S-1-5-18"


@pytest.mark.parametrize(("xml", "sid", "name", "same"), [
    ("NT AUTHORITY\\SYSTEM", "S-1-5-18", "", True),
    ("S-1-5-18", "S-1-5-18", "", True),
    ("WS-FIN-042\\jsmith", "S-1-5-21-2847163290-1933645801-3375812043-1001", "WS-FIN-042\\jsmith", True),
    ("WS-FIN-042\\jsmith", "S-1-5-18", "", False),
    ("Users", "S-1-5-32-545", "", True),
])
def test_principal_aliases_match_the_jobbucket_sid(xml, sid, name, same):
    assert principal_matches(xml, sid, name) is same



