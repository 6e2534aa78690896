"""Fill a hive with keys and values through the hivex library.

Run by the system interpreter (``/usr/bin/python3 hive_fill.py``), because the ``hivex`` module
comes from the Debian package python3-hivex and is not on PyPI. Reads a JSON job on stdin:
``{"hive": PATH, "keys": [{"path": "A\\\\B", "values": [[name, type, hex data], ...]}, ...]}``,
creates missing keys in order, sets each key's values and commits the hive in place.
"""

import json
import sys

import hivex


def fill(job):
    hive = hivex.Hivex(job["hive"], write=True)
    for key in job["keys"]:
        node = hive.root()
        for part in [p for p in key["path"].split("\\") if p]:
            child = hive.node_get_child(node, part)
            node = child if child else hive.node_add_child(node, part)
        if key["values"]:
            hive.node_set_values(
                node, [{"key": name, "t": kind, "value": bytes.fromhex(data)} for name, kind, data in key["values"]]
            )
    hive.commit(job["hive"])


if __name__ == "__main__":
    fill(json.load(sys.stdin))
