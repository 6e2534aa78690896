"""triage's volatility3 plugins (``taskprocs.TaskProcs``, ``taskcache_mem.TaskCacheMem``) as package modules.

volatility3 finds plugins by walking the folders on ``volatility3.plugins.__path__``; :func:`register`
puts this folder there, so an installed triage (wheel, pipx) runs them without a source checkout or
``sys.path`` edits. On the command line: ``vol -p $(python -m triage.volplugins --path) ...``.
"""

from __future__ import annotations

from pathlib import Path

PLUGIN_DIR = Path(__file__).resolve().parent
PLUGIN_MODULES = ("taskcache_mem", "taskprocs")


def register() -> None:
    """Add this folder to volatility3's plugin path, and name the already-imported package modules under
    ``volatility3.plugins`` so volatility's own plugin import (``import_files``) reuses them instead of
    loading a second copy of each plugin class."""
    import importlib
    import sys

    import volatility3.plugins

    if str(PLUGIN_DIR) not in volatility3.plugins.__path__:
        volatility3.plugins.__path__.append(str(PLUGIN_DIR))
    for name in PLUGIN_MODULES:
        sys.modules.setdefault(f"volatility3.plugins.{name}", importlib.import_module(f"{__name__}.{name}"))
