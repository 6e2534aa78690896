"""`vol -p plugins ... taskcache_mem.TaskCacheMem` from a source checkout.

The plugin is triage/volplugins/taskcache_mem.py, installed with triage
(`vol -p $(python -m triage.volplugins --path)`);
this module only puts its class where volatility's loader looks. vol lists it as
triage.volplugins.taskcache_mem.TaskCacheMem and matches `taskcache_mem.TaskCacheMem`.
"""

from triage.volplugins.taskcache_mem import TaskCacheMem

__all__ = ["TaskCacheMem"]
