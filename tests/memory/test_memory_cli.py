"""`triage --memory` end to end on the synthetic Windows 10 image: findings, and the missing-symbols case."""

from __future__ import annotations

from triage.cli import main


def test_triage_memory_reports_hidden_and_unregistered_task_processes(images, capsys):
    image, symbols = images["win10"]["image"], images["win10"]["symbols"]
    code = main(["--memory", str(image), "--symbols", str(symbols), "--hunt-date", "20260101", "-q"])
    out = capsys.readouterr().out
    assert code == 0
    assert "\\WinUpdateCheck" in out and "(Tarrask)" in out
    assert "(running task) svcupd.exe pid 7016" in out
    assert "Index value is 0" in out


def test_missing_symbols_is_one_clear_line_and_exit_1(images, tmp_path, capsys):
    empty = tmp_path / "no-symbols"
    empty.mkdir()
    code = main(["--memory", str(images["win10"]["image"]), "--symbols", str(empty), "-q"])
    captured = capsys.readouterr()
    assert code == 1  # completed, but the memory image could not be read: a gap
    assert "Traceback" not in captured.err
    line = next(line for line in captured.err.splitlines() if "no symbols for the kernel" in line)
    assert "ntkrnlmp.pdb" in line and "GUID" in line and "age" in line and "--symbols" in line
    assert "Gaps (not read): 1" in captured.out
