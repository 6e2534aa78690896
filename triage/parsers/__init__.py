"""Pure parsers: bytes or text in, :mod:`triage.records` out.

No dissect.target or volatility import here (dissect.cstruct is fine). Each module documents the one
error type it may raise and never raises anything else, whatever the input.
"""
