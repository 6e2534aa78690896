"""``python -m triage.volplugins --path`` prints the plugin folder, for ``vol -p $(...)``."""

from __future__ import annotations

import argparse

from triage.volplugins import PLUGIN_DIR, PLUGIN_MODULES


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m triage.volplugins",
                                     description="triage's volatility3 plugins: " + ", ".join(PLUGIN_MODULES))
    parser.add_argument("--path", action="store_true", help="print the folder to pass to `vol -p`")
    args = parser.parse_args(argv)
    if not args.path:
        parser.print_help()
        return 2
    print(PLUGIN_DIR)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
