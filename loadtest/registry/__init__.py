"""The registry: what every process shares without importing the project (stdlib only).

The targets, the scenarios and shared names, the bind rules and the run record; docs/architecture.md.
"""
