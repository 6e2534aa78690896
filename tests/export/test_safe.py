"""Neutralising hostile values for each output format, value by value."""

from __future__ import annotations

import json

from triage.export.safe import csv_cell, escape_controls, html_text, json_text, md_text


def test_formula_cells_get_a_leading_apostrophe():
    assert csv_cell("=cmd|' /C calc'!A0") == "'=cmd|' /C calc'!A0"
    assert csv_cell("+1+1") == "'+1+1"
    assert csv_cell("-2+3") == "'-2+3"
    assert csv_cell("@SUM(1+1)") == "'@SUM(1+1)"
    assert csv_cell("\t=1") == "'\\x09=1"
    assert csv_cell("\r=1") == "'\\x0d=1"


def test_plain_cells_and_the_l2tcsv_dash_are_unchanged():
    assert csv_cell("-") == "-"
    assert csv_cell("\\Microsoft\\Windows\\Defrag\\ScheduledDefrag") == "\\Microsoft\\Windows\\Defrag\\ScheduledDefrag"
    assert csv_cell(None) == ""


def test_terminal_escapes_and_bidi_overrides_are_shown_escaped():
    assert escape_controls("a\x1b[2Jb\x07") == "a\\x1b[2Jb\\x07"
    assert escape_controls("invoice\u202etxt.exe") == "invoice\\u202etxt.exe"
    assert escape_controls("tag\U000E0041") == "tag\\U000e0041"
    assert escape_controls("line\nbreak\u2028") == "line\\x0abreak\\u2028"
    assert escape_controls("Zürich 東京") == "Zürich 東京"


def test_json_keeps_the_exact_value_with_invisible_characters_escaped():
    value = {"task": "a\x1b\u202e\udc80\U000E0041\u2028b", "name": "Zürich"}
    text = json_text(value)
    assert text == '{"task": "a\\u001b\\u202e\\udc80\\udb40\\udc41\\u2028b", "name": "Zürich"}'
    assert json.loads(text) == value


def test_html_escapes_markup_and_quotes():
    assert html_text('<script>alert("x")</script>\'') == "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#x27;"
    assert html_text("a\x00b") == "a\\x00b"


def test_markdown_markup_and_html_from_evidence_render_as_text():
    assert md_text("<img src=x onerror=alert(1)>") == "&lt;img src=x onerror=alert(1)&gt;"
    assert md_text("[click](http://evil.example)") == "\\[click\\](http\\://evil.example)"
    assert md_text("AT&T <b> www.evil.example bob@evil.example") == "AT\\&T &lt;b&gt; www\\.evil.example bob\\@evil.example"
    assert md_text("**bold** _it_ `code` a|b ~~s~~ $x$") == "\\*\\*bold\\*\\* \\_it\\_ \\`code\\` a\\|b \\~\\~s\\~\\~ \\$x\\$"


def test_markdown_keeps_task_path_backslashes_readable_and_exact():
    assert md_text("\\Microsoft\\Windows\\Defrag") == "\\Microsoft\\Windows\\Defrag"
    # Before punctuation a backslash would be read as an escape, so it is doubled there.
    assert md_text("\\..\\x") == "\\\\..\\x"
    assert md_text("C:\\") == "C:\\\\"
