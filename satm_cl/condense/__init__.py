"""The bilevel condensation engine (MTT and SATM) and its one-call entry point `condense`."""

from satm_cl.condense.api import condense

__all__ = ["condense"]
