"""The live swimlane chart's data (``webui.swimlanes``): lanes, bars and CPU cores from identity records."""

from __future__ import annotations

from loadtest.generator import webui


def record(pid: str, thread: str, start: float, end: float, cpu_ms: str | None, kind: str = "thread") -> dict:
    return {"t": start, "ms": (end - start) * 1000, "pid": pid, "thread": thread, "start": f"{start:.6f}",
            "end": f"{end:.6f}", "cpu_ms": cpu_ms, "lane_kind": kind}  # fmt: skip


def test_lanes_of_the_last_seconds_end_at_the_last_response():
    records = [record("7", "T1", 100.0, 100.2, "20.0"), record("7", "T2", 100.1, 100.3, "20.0")]
    records.append(record("7", "T1", 80.0, 80.1, "1.0"))  # older than the window: not drawn
    data = webui.swimlanes(records, "lab-threaded")
    assert data["server"] == "lab-threaded" and data["window_s"] == webui.SWIMLANE_MIN_S  # a fresh run
    assert [(lane["pid"], lane["thread"]) for lane in data["lanes"]] == [("7", "T1"), ("7", "T2")]
    first = data["lanes"][0]["bars"]
    assert first == [[-0.3, -0.1, 0.02]]  # seconds before the last end; CPU in seconds


def test_greenlets_keep_their_kind_and_unknown_cpu_stays_unknown():
    data = webui.swimlanes([record("9", "Dummy-1", 5.0, 5.5, None, kind="greenlet")], "gunicorn-gevent")
    lane = data["lanes"][0]
    assert lane["kind"] == "greenlet" and lane["bars"][0][2] is None


def test_only_the_busiest_lanes_are_drawn():
    records = [
        record("1", f"T{i:02d}", 10.0, 10.0 + 0.01 * (i + 1), "1.0") for i in range(webui.SWIMLANE_LANES + 5)
    ]
    data = webui.swimlanes(records, "x")
    assert len(data["lanes"]) == webui.SWIMLANE_LANES and data["hidden_lanes"] == 5
    assert "T00" not in {lane["thread"] for lane in data["lanes"]}  # the idlest lane is the one left out


def test_no_records_no_lanes():
    assert webui.swimlanes([], "x")["lanes"] == []


def test_the_window_grows_with_the_run_up_to_its_limit_and_lanes_sort_naturally():
    records = [record("7", f"conn-{n}", 100.0 + n, 100.5 + n, "1.0") for n in (5, 10, 9)]
    assert webui.swimlanes(records, "x")["window_s"] == 5.5
    longer = [*records, record("7", "conn-5", 90.0, 100.0, "1.0")]  # began 20.5 s before the last end
    data = webui.swimlanes(longer, "x")
    assert data["window_s"] == webui.SWIMLANE_S
    assert [lane["thread"] for lane in data["lanes"]] == ["conn-5", "conn-9", "conn-10"]


def test_the_live_sentence_words_gil_turns_only_when_the_servers_gil_was_on():
    """10 threads, 20 ms of CPU each in 190 ms: turns on one GIL -- unless the server said its GIL was off."""
    records = [record("7", f"T{i % 10}", 100 + i * 0.02, 100.19 + i * 0.02, "20.0") for i in range(100)]
    on = webui.evidence_row("lab-threaded", "cpu", 10, 0.5, records, {"gil_enabled": True})["answer"]
    off = webui.evidence_row("lab-threaded", "cpu", 10, 0.5, records, {"gil_enabled": False})["answer"]
    assert "the threads took turns on one GIL" in on
    assert "GIL" not in off and "10 in flight" in off
