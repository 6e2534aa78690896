"""triage: hunt scheduled-task persistence (MITRE ATT&CK T1053) in acquired evidence."""

__version__ = "0.1.0"
