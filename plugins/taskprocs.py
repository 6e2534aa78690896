"""`vol -p plugins ... taskprocs.TaskProcs` from a source checkout.

The plugin is triage/volplugins/taskprocs.py, installed with triage
(`vol -p $(python -m triage.volplugins --path)`);
this module only puts its class where volatility's loader looks. vol lists it as
triage.volplugins.taskprocs.TaskProcs and matches `taskprocs.TaskProcs`.
"""

from triage.volplugins.taskprocs import TaskProcs

__all__ = ["TaskProcs"]
