"""Flotilla hub.

Kept empty of imports on purpose, so that ``hub.contract`` (standard library only) can be
imported by the agent without loading the hub's web stack.
"""

__version__ = "0.1.0"
