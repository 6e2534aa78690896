"""Pure parsers: bytes or text in, :mod:`triage.records` out.

No dissect.target or volatility import here (dissect.cstruct is fine). Each module documents the one
error type it may raise and never raises anything else, whatever the input.
"""


class ParseError(ValueError):
    """The one error a parser raises on bad input; each parser's own error type derives from it, so a
    collector (and :func:`triage.collect.perfile.collect_files`) catches every parser's the same way."""


__all__ = ["ParseError"]
