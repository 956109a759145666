"""Flotilla edge agent.

Kept empty of imports on purpose: importing ``agent.<module>`` must not pull in the Kubernetes
client or GitPython unless that module needs them.
"""

__version__ = "0.1.0"
