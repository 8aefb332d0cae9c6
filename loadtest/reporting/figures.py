"""A result row's figures, read and printed: median, interval, counts.

Rows written before rounds existed have no ``rounds`` and no intervals; every
reader goes through ``rounds_of`` and ``interval`` so they render as one round
with no interval.  No plotting, no documents.
"""

from __future__ import annotations

from loadtest.measure.stats import number
from loadtest.registry.records import ComparisonRow

LABELS = {"rps": "req/s", "p50_ms": "p50", "p95_ms": "p95", "p99_ms": "p99", "server_cpu_cores": "server CPU"}


def rounds_of(row: ComparisonRow) -> int:
    """Rounds behind the row's figures, by the record's rule (``ComparisonRow.round_count``)."""
    return row.round_count


def interval(row: ComparisonRow, metric: str) -> list[float] | None:
    """The metric's interval by the record's rule (``ComparisonRow.interval``), as a list for charts."""
    ci = row.interval(metric)
    return list(ci) if ci else None


def fmt(value, spec: str = ".1f", none: str = "-") -> str:
    if value is None or value == "":
        return none
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "yes" if value else "no"
    return format(value, spec)


def pct(value) -> str:
    return "-" if number(value) is None else f"{value:.0%}"


def spec_for(value) -> str:
    """Three significant digits or so: 1970, 19.7, 1.97."""
    size = abs(number(value) or 0.0)
    return ".0f" if size >= 100 else ".1f" if size >= 10 else ".2f"


def with_ci(row: ComparisonRow, metric: str, spec: str | None = None) -> str:
    """'1970 [1901-2011]': the median and, when there is one, its interval."""
    value = row.value(metric)
    spec = spec or spec_for(value)
    text = fmt(value, spec)
    ci = interval(row, metric)
    if ci is not None:
        text += f" [{ci[0]:{spec}}-{ci[1]:{spec}}]"
    return text


def errors_text(row: ComparisonRow) -> str:
    """'12: 10 non 2xx, 2 connection reset', '0', or '-' when unknown."""
    failures = row.failures
    parts = [f"{n:g} {kind.replace('_', ' ')}" for kind, n in row.errors.items() if number(n)]
    if failures is None and not parts:
        return "-"
    return f"{failures or 0:g}" + (": " + ", ".join(parts) if parts else "")


def listed(value) -> str:
    """[1, 2, 4] -> '1, 2, 4'; anything else as it is."""
    return ", ".join(str(v) for v in value) if isinstance(value, list | tuple) else str(value)


def cpu_per_request(row: ComparisonRow) -> str:
    """'20.1 ms in 190 ms (9.5x)': mean CPU per request, its mean time inside the app, their ratio."""
    cpu, wall = row.value("cpu_ms_mean"), row.value("app_ms_mean")
    ratio = row.value("wall_per_cpu")
    if cpu is None or wall is None:
        return "-"
    return f"{cpu:{spec_for(cpu)}} ms in {wall:{spec_for(wall)}} ms" + (f" ({ratio:.1f}x)" if ratio else "")


def interpreter_text(row: ComparisonRow) -> str:
    """'cpython 3.12.8, GIL on': the server's own interpreter (``/_lab/usage``), '-' when it did not say."""
    python = row.interpreter or {}
    if not python:
        return "-"
    gil = "GIL on" if python.get("gil_enabled", True) else "GIL off"
    build = " (free-threaded build)" if python.get("free_threaded_build") else ""
    return f"{python.get('implementation', '?')} {python.get('version', '?')}{build}, {gil}"
