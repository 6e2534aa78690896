"""Which stores of task evidence were examined for each host: the ground every absence claim stands on.

"No task file", "no TaskCache entry", "runs logged but no definition" are claims about something
missing. They are only true where the store that would hold it was read for that host, and read
without a gap covering the place the missing thing would be. Collectors record what they read
(:meth:`triage.collect.Context.examined`); :class:`StoreIndex` answers the checks and says, per host,
what was read and what was not examined. A store that was never collected is "not examined": it is
not a gap (nothing failed to read), it raises no absence finding, and it does not lower confidence.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from triage.records import EvidenceItem, Gap, StoreRead

# What an examiner calls each store, in the order reports list them.
STORE_LABELS = {
    "task_files": "task folders (System32\\Tasks, Windows\\Tasks)",
    "taskcache": "TaskCache (SOFTWARE hive)",
    "eventlog": "event logs",
    "crontabs": "cron, anacron, at and systemd unit files",
    "cron_logs": "cron logs (syslog, cron, messages)",
    "memory": "memory image",
}
# The stores a host of each family has; anything not read of these is listed as not examined.
EXPECTED = {
    "windows": ("task_files", "taskcache", "eventlog"),
    "unix": ("crontabs", "cron_logs"),
}
# Stores whose absence-based claims are about a task's definition.
DEFINITION_STORES = {"windows": ("task_files", "taskcache"), "unix": ("crontabs",)}


def host_key(name: str | None) -> str:
    """Hosts compare by their first DNS label, case-insensitively (an event's Computer is often the FQDN)."""
    return (name or "").strip().split(".")[0].lower()


def _norm(location: str) -> str:
    """A location as a comparable path: one separator, lower case, no gap suffix like ``(chunk 3)``."""
    text = location.split(" (")[0] if location.endswith(")") and " (" in location else location
    return text.replace("\\", "/").lower().strip().rstrip("/")


def _ancestors(path: str) -> set[str]:
    """Every place ``path`` is under (see :func:`_under`): itself, each parent folder, and the empty root."""
    parts = path.split("/")
    return {"", path, *("/".join(parts[:n]) for n in range(1, len(parts)))}


def _under(path: str, ancestor: str) -> bool:
    return not ancestor or path == ancestor or path.startswith(ancestor + "/")


@dataclass(frozen=True)
class Absence:
    """The answer to "may I claim this is missing?": yes with the stores that were read, or no and why."""

    claimable: bool
    read: tuple[StoreRead, ...]
    reason: str  # why not, or "" when claimable

    def evidence(self, what: str) -> list[EvidenceItem]:
        """The stores read, as evidence items: every absence-based finding names where it looked."""
        return [EvidenceItem(source=f"store examined: {STORE_LABELS.get(s.store, s.store)}", location=s.location,
                             value=f"read for host {s.host or '(unknown)'}; {what}") for s in self.read]


class StoreIndex:
    """The stores a run examined, with the gaps that cover parts of them."""

    def __init__(self, stores: Iterable[StoreRead] = (), gaps: Iterable[Gap] = ()):
        self.stores = list(stores)
        self.gaps = list(gaps)
        self._by_place: dict[tuple[str | None, str], list[int]] | None = None
        self._whole: dict[int, list[int]] = {}
        self._indexed = 0

    def for_host(self, host: str | None, store: str) -> list[StoreRead]:
        """Stores of a kind read for a host; a task with no known host takes any host's."""
        wanted = host_key(host)
        return [s for s in self.stores if s.store == store and (not wanted or host_key(s.host) == wanted)]

    def covering_gaps(self, read: StoreRead, target: str | None = None) -> list[Gap]:
        """Gaps of the same evidence item over the whole store, or over the place ``target`` would be.

        Indexed by (evidence, place): a gap covers a path when its place is one of the path's ancestors,
        so each question costs the depth of its paths, not gaps x files (20,000 task files with a gap
        each took 22 minutes pairwise)."""
        if self._by_place is not None and self._indexed != len(self.gaps):  # gaps added since: index anew
            self._by_place, self._whole = None, {}
        key = id(read)
        if key not in self._whole:
            self._whole[key] = self._covering(read.evidence, [read.location, *read.files])
        found = self._whole[key]
        if target:
            found = sorted({*found, *self._covering(read.evidence, [target])})
        return [self.gaps[i] for i in found]

    def _covering(self, evidence: str, paths: list[str]) -> list[int]:
        """Indexes (in gap order) of the gaps of ``evidence`` whose place is or holds one of ``paths``."""
        if self._by_place is None:
            self._by_place, self._indexed = {}, len(self.gaps)
            for i, gap in enumerate(self.gaps):
                self._by_place.setdefault((gap.evidence, _norm(gap.location)), []).append(i)
        hits: set[int] = set()
        for path in paths:
            for place in _ancestors(_norm(path)):
                hits.update(self._by_place.get((evidence, place), ()))
        return sorted(hits)

    def absence(self, host: str | None, stores: Iterable[str], targets: dict[str, str] | None = None) -> Absence:
        """Whether something may be claimed missing from every store named: each must have been read for
        ``host`` and no gap may cover it (or the place ``targets[store]`` where the thing would be)."""
        targets = targets or {}
        read: list[StoreRead] = []
        for store in stores:
            found = self.for_host(host, store)
            label = STORE_LABELS.get(store, store)
            if not found:
                return Absence(False, (), f"{label} not examined ({self.only_given(host)})")
            for one in found:
                gaps = self.covering_gaps(one, self._target(one, targets.get(store)))
                if gaps:
                    return Absence(False, tuple(found), f"{label} not fully read: {gaps[0].line()}")
            read.extend(found)
        return Absence(True, tuple(read), "")

    @staticmethod
    def _target(read: StoreRead, relative: str | None) -> str | None:
        """A place inside a store: ``relative`` joined to the store's folder or key."""
        if relative is None:
            return None
        return read.location.rstrip("/\\") + "/" + relative.replace("\\", "/").strip("/")

    def only_given(self, host: str | None) -> str:
        kinds = sorted({STORE_LABELS.get(s.store, s.store) for s in self.stores
                        if not host_key(host) or host_key(s.host) == host_key(host)})
        return f"only {', '.join(kinds)} given" if kinds else "nothing was read for this host"

    def log_gaps(self, evidence: str | None, location: str) -> list[Gap]:
        """Gaps inside or over one log file: a claim that something was not logged needs the whole log."""
        where = _norm(location)
        return [g for g in self.gaps
                if g.evidence == evidence and (_under(_norm(g.location), where) or _under(where, _norm(g.location)))]

    def summary(self, hosts: Iterable[tuple[str | None, str | None]]) -> list[dict]:
        """Per host: each store read (where, channel, records, gaps over it) and each one not examined.

        ``hosts`` is (host name, family) for every host of the run; stores read for hosts not named
        (a log's other Computer) are listed under their own host.
        """
        families = {}
        for name, family in hosts:
            families.setdefault(host_key(name), (name, family))
        for read in self.stores:
            key = host_key(read.host)
            if key not in families:
                families[key] = (read.host, "windows" if read.store in ("eventlog", "task_files", "taskcache") else "unix")
            elif families[key][1] is None:
                families[key] = (families[key][0], "windows" if read.store in ("eventlog", "task_files", "taskcache") else "unix")
        out = []
        for key in sorted(families):
            name, family = families[key]
            mine = [s for s in self.stores if host_key(s.host) == key]
            rows = []
            for s in sorted(mine, key=lambda s: (list(STORE_LABELS).index(s.store) if s.store in STORE_LABELS else 99,
                                                 s.location, s.channel or "")):
                row = {"store": s.store, "location": s.location, "evidence": s.evidence}
                if s.channel:
                    row["channel"] = s.channel
                if s.records is not None:
                    row["records"] = s.records
                gaps = self.covering_gaps(s)
                if gaps:
                    row["gaps"] = [g.line() for g in gaps]
                rows.append(row)
            read_kinds = {s.store for s in mine}
            missing = [k for k in EXPECTED.get(family or "", ()) if k not in read_kinds]
            out.append({"host": name or "(unknown)", "read": rows,
                        "not_examined": [{"store": k, "label": STORE_LABELS[k]} for k in missing]})
        # an evidence item with no host name of its own (loose logs) is listed under the hosts its records name
        named = [h for h in out if h["read"] or h["host"] != "(unknown)"]
        return named or out


def summary_lines(summary: list[dict]) -> list[str]:
    """One line per host for the terminal and the Markdown report: what was read, what was not."""
    lines = []
    for host in summary:
        kinds: dict[str, list[str]] = {}
        for row in host["read"]:
            label = STORE_LABELS.get(row["store"], row["store"])
            part = row.get("channel") or ""
            if part and part not in kinds.setdefault(label, []):
                kinds[label].append(part)
            kinds.setdefault(label, [])
        read = "; ".join(f"{label} ({', '.join(parts)})" if parts else label for label, parts in kinds.items()) or "nothing"
        missing = ", ".join(m["label"] for m in host["not_examined"]) or "none"
        lines.append(f"{host['host']}: read {read}; not examined: {missing}")
    return lines
