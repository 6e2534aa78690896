"""Memory images: what the Task Scheduler is running, and the TaskCache as the kernel holds it.

``collect(source, ctx)`` opens the image once through volatility3 (one automagic pass: DTB, kernel,
symbols), then runs triage's two volatility plugins in-process on that context:
``triage/volplugins/taskprocs.py`` (Schedule service host, taskeng/taskhost(w), every process whose ancestry
leads there, including exited/unlinked ones only pool scanning finds) and
``triage/volplugins/taskcache_mem.py`` (the SOFTWARE hive's TaskCache read through volatility's registry layer
and decoded with :mod:`triage.parsers.taskcache`). It yields :class:`TaskProcess` and
:class:`TaskDefinition` (source ``memory_taskcache``) records.

The command-line analysis (encoded PowerShell, LOLBins, user-writable paths) is the pure parser
:mod:`triage.parsers.task_processes`; process-to-task linking is the correlator's
(:func:`triage.correlate.link_task_processes`, which has the disk's TaskScheduler events too).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

from triage.records import TaskDefinition, TaskProcess

class MissingKernelSymbols(Exception):
    """The image's kernel was found but no usable symbol table (ISF) for its PDB: missing, or present
    at the expected path but unreadable, not an ISF, or made for another kernel build."""

    def __init__(self, pdb_name: str | None, guid: str | None, age: int | None, symbol_dirs: list[str]):
        self.pdb_name, self.guid, self.age = pdb_name, guid, age
        if guid:
            paths = [Path(d) / "windows" / pdb_name / f"{guid}-{age}.json.xz" for d in symbol_dirs]
            present = [p for p in paths if p.exists()]
            kernel = f"the kernel {pdb_name} GUID {guid} age {age}"
            if present:
                message = (f"symbols for {kernel} are at {present[0]} but {_isf_problem(present[0], guid, age)}: "
                           f"replace that file with the ISF built by `python -m volatility3.framework.symbols.windows.pdbconv "
                           f"-p {pdb_name} -g {guid}{age}`; memory analysis skipped")
            else:
                where = " or ".join(map(str, paths)) or f"DIR/windows/{pdb_name}/{guid}-{age}.json.xz"
                message = (f"no symbols for {kernel}: put its ISF at {where} "
                           f"and pass --symbols DIR (build it where there is network with "
                           f"`python -m volatility3.framework.symbols.windows.pdbconv -p {pdb_name} -g {guid}{age}`); "
                           "memory analysis skipped")
        else:
            message = ("no Windows kernel found in the image (no DTB or ntkrnlmp/ntoskrnl PDB signature): "
                       "not a supported x64 Windows memory image; memory analysis skipped")
        super().__init__(message)


MAX_ISF_BYTES = 512 * 1024 * 1024


def _isf_problem(path: Path, guid: str, age: int) -> str:
    """Why volatility could not use the ISF file that is where it belongs."""
    import json
    import lzma

    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_ISF_BYTES + 1)
    except OSError as exc:
        return f"it cannot be read ({exc.strerror or exc})"
    try:
        decompressor = lzma.LZMADecompressor()
        text = decompressor.decompress(raw, max_length=MAX_ISF_BYTES)
        isf = json.loads(text)
        pdb = isf["metadata"]["windows"]["pdb"]
    except (lzma.LZMAError, ValueError, KeyError, TypeError, EOFError) as exc:
        return f"it is not a valid xz-compressed ISF JSON file ({type(exc).__name__}: {' '.join(str(exc).split())[:120]})"
    if str(pdb.get("GUID", "")).upper() != guid.upper() or pdb.get("age") != age:
        return f"it was made for another kernel build (GUID {pdb.get('GUID')} age {pdb.get('age')})"
    return "volatility could not use it (an ISF format version this volatility3 does not read?)"


class VolatilitySession:
    """One volatility3 context on one image, with the kernel module resolved once by automagic."""

    def __init__(self, image: Path, symbol_dirs: list[str], progress=None):
        self.image = image
        self.symbol_dirs = symbol_dirs
        self.progress = progress
        self._cache = tempfile.mkdtemp(prefix="triage-vol-cache-")
        self._saved: dict[str, Any] = {}

    def __enter__(self) -> "VolatilitySession":
        try:
            return self._open()
        except BaseException:  # missing symbols, not a memory image, interrupted: settings back, cache gone
            self.__exit__(None, None, None)
            raise

    def _open(self) -> VolatilitySession:
        import volatility3.plugins
        import volatility3.schemas
        import volatility3.symbols
        from volatility3 import framework
        from volatility3.framework import automagic, constants, contexts, interfaces, plugins

        framework.require_interface_version(2, 0, 0)
        logging.getLogger("volatility3").addHandler(logging.NullHandler())
        self._saved = {"cache": constants.CACHE_PATH, "offline": constants.OFFLINE,
                       "symbols": list(volatility3.symbols.__path__),
                       "validation": volatility3.schemas.cached_validation_filepath}
        constants.CACHE_PATH = self._cache
        volatility3.schemas.cached_validation_filepath = str(Path(self._cache) / "valid_isf.hashcache")
        constants.OFFLINE = True
        # volatility's "download" step opens <symbols>/windows/<pdb>/<guid>-<age>.json.xz for writing in
        # the examiner's --symbols folder even offline, then deletes it: an ISF it could not use is lost
        from volatility3.framework.symbols.windows import pdbutil

        self._saved["download"] = pdbutil.PDBUtility.__dict__["download_pdb_isf"]
        pdbutil.PDBUtility.download_pdb_isf = classmethod(lambda cls, *args, **kwargs: None)
        volatility3.symbols.__path__ = [str(Path(d).resolve()) for d in self.symbol_dirs] + list(constants.SYMBOL_BASEPATHS)
        from triage import volplugins
        from triage.volplugins import taskprocs

        volplugins.register()

        self.taskprocs = taskprocs
        self.context = contexts.Context()
        self.context.config["automagic.LayerStacker.single_location"] = self.image.resolve().as_uri()
        chosen = automagic.choose_automagic(automagic.available(self.context), taskprocs.TaskProcs)
        self._progress_seen: set[str] = set()
        try:
            plugin = plugins.construct_plugin(self.context, chosen, taskprocs.TaskProcs, "plugins",
                                              self._report, interfaces.plugins.FileHandlerInterface)
        except framework.exceptions.UnsatisfiedException:
            raise self._missing_symbols() from None
        self.kernel = plugin.config["kernel"]
        self.config_path = plugin.config_path
        return self

    def _report(self, percent: float, description: str | None = None) -> None:
        """Volatility progress, one line per phase (not per percent)."""
        phase = (description or "").split(" at ")[0].strip()
        if self.progress and phase and phase not in self._progress_seen:
            self._progress_seen.add(phase)
            self.progress(f"volatility: {phase}")

    def _missing_symbols(self) -> MissingKernelSymbols:
        from volatility3.framework import layers
        from volatility3.framework.automagic import pdbscan

        intel = [name for name, layer in self.context.layers.items() if isinstance(layer, layers.intel.Intel)]
        found = pdbscan.KernelPDBScanner(self.context, "triage_pdbscan").determine_valid_kernel(self.context, intel) if intel else None
        if not found:
            return MissingKernelSymbols(None, None, None, self.symbol_dirs)
        _layer, _offset, kernel = found
        return MissingKernelSymbols(kernel["pdb_name"], kernel["GUID"], kernel["age"], self.symbol_dirs)

    def __exit__(self, *exc) -> None:
        import volatility3.schemas
        import volatility3.symbols
        from volatility3.framework import constants

        if "validation" in self._saved:
            volatility3.schemas.cached_validation_filepath = self._saved["validation"]
        constants.CACHE_PATH = self._saved.get("cache", constants.CACHE_PATH)
        constants.OFFLINE = self._saved.get("offline", constants.OFFLINE)
        if "symbols" in self._saved:
            volatility3.symbols.__path__ = self._saved["symbols"]
        if "download" in self._saved:
            from volatility3.framework.symbols.windows import pdbutil

            pdbutil.PDBUtility.download_pdb_isf = self._saved["download"]
        shutil.rmtree(self._cache, ignore_errors=True)



def analyse(image: Path, symbol_dirs: list[str], evidence: str | None = None, progress=None):
    """Run both plugins on one image (a :class:`triage.volplugins.taskprocs.MemoryAnalysis`)."""
    with VolatilitySession(image, symbol_dirs, progress) as session:
        return session.taskprocs.TaskProcs.analyse(session.context, session.config_path, session.kernel, evidence, progress)


def collect(source, ctx) -> Iterator[TaskDefinition | TaskProcess]:
    """Memory evidence: task definitions (in-memory TaskCache, rebuilt from command lines), then the task
    processes. The host name and OS the in-memory registry holds name the evidence item when nothing else did."""
    if source.memory is None:
        return
    image = Path(source.memory)
    symbols = ctx.options.get("symbols")
    symbol_dirs = [symbols] if isinstance(symbols, (str, Path)) else [str(s) for s in symbols or []]
    ctx.progress(f"memory: opening {image.name} with volatility3")
    try:
        result = analyse(image, [str(s) for s in symbol_dirs], source.name, ctx.progress)
    except MissingKernelSymbols as exc:
        ctx.gap(source.name, "kernel symbols", str(exc))
        return
    except Exception as exc:  # volatility raises many types on damaged images; never a traceback
        ctx.gap(source.name, str(image), f"volatility3 could not analyse the image: {type(exc).__name__}: {exc}")
        return
    source.host.hostname = source.host.hostname or result.host.get("hostname")
    source.host.os = source.host.os or result.host.get("os")
    for problem in result.problems:
        if problem.startswith(("no running Schedule service", "service records unreadable")):
            ctx.progress(f"memory: {problem}")  # the process tree still finds the host: a note, not a gap
        else:
            ctx.gap(source.name, r"\REGISTRY\MACHINE (in memory)", problem)
    ctx.progress(f"memory: Schedule service host found from the {result.schedule_host_method}")
    for record in (*result.definitions, *result.processes):  # every row from the image carries its SHA-256
        record.provenance.evidence_sha256 = source.ref.sha256
    yield from result.definitions
    yield from result.processes
