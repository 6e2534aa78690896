"""XML attacks in task files, GPP ScheduledTasks.xml and 4698 TaskContent: refused or parsed safely.

Entity expansion (billion laughs, quadratic blowup), external entities and DTD retrieval must never
touch the file system or the network: a Python audit hook (a guard, not a mock) records every
``open`` and socket call made while the parser runs, and the secret file's content must appear
nowhere. Deep nesting, broken UTF-16, mixed encodings and BOMs either parse or give the parser's
documented error; run through the collector on a directory target each hostile file is one gap
line naming the file, and the good task next to it is still read.
"""

from __future__ import annotations

import codecs
import json
import sys
import tracemalloc
from dataclasses import asdict
from pathlib import Path

import pytest

from tests.linear_time import assert_linear
from triage.collect import Context
from triage.parsers.evtx_task import task_event
from triage.parsers.gpp import GppError, parse_gpp_scheduled_tasks
from triage.parsers.task_xml import TaskXmlError, parse_task_xml
from triage.records import Provenance
from triage.run import run
from tests.conftest import CORPUS

pytestmark = pytest.mark.usefixtures("corpus")  # real samples from ../shared/corpus

GOOD_TASK = CORPUS / "fox-it__dissect.target/tests/_data/plugins/os/windows/tasks/MapsToastTask"
PROVENANCE = Provenance(artifact="task_xml", location="test")
SECRET = "TRIAGE-SECRET-7f3a9c"

_AUDIT: list[tuple[str, tuple]] = []
_AUDITING = False


def _audit(event: str, args: tuple) -> None:
    if _AUDITING and (event == "open" or event.startswith(("socket.", "urllib."))):
        _AUDIT.append((event, args))


sys.addaudithook(_audit)


@pytest.fixture
def guarded():
    """Every file open and socket use during the block, as the interpreter's audit events report them."""
    global _AUDITING
    _AUDIT.clear()
    _AUDITING = True
    try:
        yield _AUDIT
    finally:
        _AUDITING = False


@pytest.fixture
def secret_file(tmp_path) -> Path:
    path = tmp_path / "secret.txt"
    path.write_text(SECRET)
    return path


def _task(body: str = "<Actions><Exec><Command>cmd.exe</Command></Exec></Actions>", head: str = "") -> bytes:
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{head}<Task xmlns="http://schemas.microsoft.com/windows/2004/02/mit/task">{body}</Task>'.encode()


LAUGHS = ('<!DOCTYPE Task [<!ENTITY l0 "ha">' + "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
          + "]>\n")
QUADRATIC = f'<!DOCTYPE Task [<!ENTITY big "{"x" * 100_000}">]>\n'


def _attacks(secret: Path) -> dict[str, tuple[bytes, str]]:
    """name -> (file bytes, what the refusal says)."""
    uri = secret.as_uri()
    return {
        "billion-laughs": (_task("<RegistrationInfo><Description>&l9;</Description></RegistrationInfo>", LAUGHS),
                           "DOCTYPE/entity declarations are not allowed"),
        "quadratic-blowup": (_task("<RegistrationInfo><Description>" + "&big;" * 10_000 + "</Description></RegistrationInfo>",
                                   QUADRATIC), "DOCTYPE/entity declarations are not allowed"),
        "external-entity": (_task("<RegistrationInfo><Description>&xxe;</Description></RegistrationInfo>",
                                  f'<!DOCTYPE Task [<!ENTITY xxe SYSTEM "{uri}">]>\n'),
                            "DOCTYPE/entity declarations are not allowed"),
        "parameter-entity": (_task(head=f'<!DOCTYPE Task [<!ENTITY % p SYSTEM "{uri}"> %p;]>\n'),
                             "DOCTYPE/entity declarations are not allowed"),
        "dtd-retrieval": (_task(head='<!DOCTYPE Task SYSTEM "http://203.0.113.9/task.dtd">\n'),
                          "DOCTYPE/entity declarations are not allowed"),
    }


@pytest.mark.parametrize("name", ["billion-laughs", "quadratic-blowup", "external-entity", "parameter-entity", "dtd-retrieval"])
def test_entity_and_dtd_attacks_are_refused_without_touching_files_or_network(name, secret_file, guarded):
    data, message = _attacks(secret_file)[name]
    tracemalloc.start()
    with pytest.raises(TaskXmlError) as refused:
        parse_task_xml(data, task="\\Attack", provenance=PROVENANCE, local_tz=None)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 4 * len(data) + (1 << 20)  # nothing expanded: 1 GB for the blowup, 2 GB for the laughs
    assert message in str(refused.value)
    assert "nothing was fetched" in str(refused.value) or "refused" in str(refused.value)
    assert SECRET not in str(refused.value)
    assert guarded == []  # no open(), no socket, no urllib while parsing


def test_gpp_file_with_billion_laughs_is_refused(guarded):
    data = ("<?xml version=\"1.0\"?>\n" + LAUGHS + '<ScheduledTasks clsid="{CC63F200-7309-4ba0-B154-A71CD118DBCC}">'
            '<Task name="&l9;"/></ScheduledTasks>').encode()
    with pytest.raises(GppError, match="DOCTYPE/entity declarations are not allowed"):
        parse_gpp_scheduled_tasks(data, path="ScheduledTasks.xml", provenance=PROVENANCE, local_tz=None)
    assert guarded == []


def test_4698_task_content_with_external_entity_keeps_the_event_and_refuses_the_xml(secret_file, guarded):
    content = _attacks(secret_file)["external-entity"][0].decode()
    event = {"EventID": 4698, "Channel": "Security", "TimeCreated_SystemTime": "2024-03-12T14:05:09.123456Z",
             "EventRecordID": 77, "TaskName": "\\Attack", "TaskContent": content, "Computer": "WS-FIN-042"}
    built = task_event(event, location="Security.evtx")
    assert built.action == "created" and built.task == "\\Attack"
    assert built.definition.errors[0].startswith("TaskContent unreadable: DOCTYPE/entity declarations are not allowed")
    assert SECRET not in json.dumps(asdict(built), default=str)
    assert guarded == []


def test_xinclude_is_not_followed(secret_file, guarded):
    data = _task(f'<RegistrationInfo xmlns:xi="http://www.w3.org/2001/XInclude"><Description>'
                 f'<xi:include href="{secret_file.as_uri()}" parse="text"/></Description></RegistrationInfo>'
                 "<Actions><Exec><Command>cmd.exe</Command></Exec></Actions>")
    definition = parse_task_xml(data, task="\\XInclude", provenance=PROVENANCE, local_tz=None)
    assert definition.actions[0].command == "cmd.exe"
    assert SECRET not in json.dumps(asdict(definition), default=str)
    assert guarded == []


def _nested(depth: int) -> bytes:
    return _task("<RegistrationInfo>" + "<a>" * depth + "</a>" * depth + "</RegistrationInfo>"
                 "<Actions><Exec><Command>deep.exe</Command></Exec></Actions>")


def test_element_nesting_100000_deep_is_handled_in_linear_time():
    data = _nested(100_000)
    try:
        definition = parse_task_xml(data, task="\\Deep", provenance=PROVENANCE, local_tz=None)
    except TaskXmlError as exc:
        assert str(exc)
    else:
        assert definition.actions[0].command == "deep.exe"
    assert_linear(lambda d: parse_task_xml(d, task="\\Deep", provenance=PROVENANCE, local_tz=None),
                  _nested(12_500), data, 8, expected=TaskXmlError, what="task XML nested 100,000 deep")


TEXT = '<Task xmlns="http://schemas.microsoft.com/windows/2004/02/mit/task"><Actions><Exec><Command>C:\\Tools\\nëw.exe</Command></Exec></Actions></Task>'


@pytest.mark.parametrize(("name", "data", "note"), [
    ("utf16le-bom-odd-length", codecs.BOM_UTF16_LE + TEXT.encode("utf-16-le") + b"\x00", "odd number of bytes in UTF-16 text"),
    ("utf16le-no-bom", TEXT.encode("utf-16-le"), None),
    ("utf16be-bom", codecs.BOM_UTF16_BE + TEXT.encode("utf-16-be"), None),
    ("utf8-bom-declares-utf16", codecs.BOM_UTF8 + b'<?xml version="1.0" encoding="UTF-16"?>' + TEXT.encode(), None),
    ("utf16-declares-utf8", codecs.BOM_UTF16_LE + ('<?xml version="1.0" encoding="UTF-8"?>' + TEXT).encode("utf-16-le"), None),
    ("no-bom-declares-utf16", b'<?xml version="1.0" encoding="UTF-16"?>' + TEXT.encode(), None),
    ("utf32-bom", codecs.BOM_UTF32_LE + TEXT.encode("utf-32-le"), None),
])
def test_bom_and_declared_encoding_mixtures_decode_to_the_same_command(name, data, note):
    definition = parse_task_xml(data, task="\\Enc", provenance=PROVENANCE, local_tz=None)
    assert definition.actions[0].command == "C:\\Tools\\nëw.exe"
    if note:
        assert any(note in error for error in definition.errors)


def test_lone_surrogate_in_utf16_is_replaced_and_flagged():
    data = codecs.BOM_UTF16_LE + TEXT.replace("ë", "\ud800").encode("utf-16-le", "surrogatepass")
    definition = parse_task_xml(data, task="\\Surrogate", provenance=PROVENANCE, local_tz=None)
    assert definition.actions[0].command == "C:\\Tools\\n\ufffdw.exe"
    assert any("not valid utf-16-le" in error for error in definition.errors)


def test_cp1252_bytes_in_a_file_declared_utf8_are_read_not_refused():
    data = b'<?xml version="1.0" encoding="UTF-8"?>' + TEXT.encode("cp1252")
    definition = parse_task_xml(data, task="\\Cp1252", provenance=PROVENANCE, local_tz=None)
    assert definition.actions[0].command == "C:\\Tools\\nëw.exe"


def test_hostile_task_files_on_a_directory_target_are_gaps_and_the_good_task_is_read(tmp_path, secret_file, guarded):
    tasks = tmp_path / "evidence" / "Windows" / "System32" / "Tasks"
    tasks.mkdir(parents=True)
    (tasks / "MapsToastTask").write_bytes(GOOD_TASK.read_bytes())
    for name, (data, _) in sorted(_attacks(secret_file).items()):
        (tasks / name).write_bytes(data)
    (tasks / "odd-utf16").write_bytes(codecs.BOM_UTF16_LE + TEXT.encode("utf-16-le") + b"\x00")
    ctx = Context(quiet=True)
    case = run([str(tmp_path / "evidence")], ctx)
    task_gaps = {Path(g.location).name: g.problem for g in ctx.gaps if "/Tasks/" in g.location}
    assert sorted(task_gaps) == sorted([*_attacks(secret_file), "odd-utf16"])
    for name in _attacks(secret_file):
        assert task_gaps[name].startswith("task XML not parsed: DOCTYPE/entity declarations are not allowed")
    assert task_gaps["odd-utf16"] == "partly decoded: odd number of bytes in UTF-16 text: last byte dropped"
    by_task = {d.task: d for d in case.definitions}
    assert by_task["\\MapsToastTask"].errors == []
    assert by_task["\\MapsToastTask"].actions[0].kind == "comhandler"
    assert by_task["\\odd-utf16"].actions[0].command == "C:\\Tools\\nëw.exe"
    assert sorted(by_task) == sorted(["\\MapsToastTask", "\\odd-utf16", *(f"\\{n}" for n in _attacks(secret_file))])
    assert not any(str(secret_file) in str(args) for _, args in guarded)
    assert not any(event.startswith("socket.") for event, _ in guarded)
    assert SECRET not in json.dumps([asdict(d) for d in case.definitions], default=str)
