"""The sweep's progress goes through the shared ProgressDisplay: plain lines with the counts in a
log, a bar with the cell events above it on a terminal, nothing when quiet."""

import io
import re

from fwp.gan.sweep import SweepProgress


def test_log_lines_carry_the_counts_and_quiet_prints_nothing():
    stream = io.StringIO()
    progress = SweepProgress(total=3, slots=1, stream=stream, interactive=False)
    progress.done, progress.durations = 1, [60.0]
    progress.event("done delta-seed0 at step 4 in 1m00s")
    progress.show()
    lines = [
        re.sub(r"elapsed \d+m\d\ds", "elapsed 0m00s", line)
        for line in stream.getvalue().splitlines()
    ]
    assert lines == [
        "ablate: done delta-seed0 at step 4 in 1m00s "
        "[1/3 done, 0 running, 0 failed, 2 pending | elapsed 0m00s | ETA 2m00s]",
        "ablate: 1/3 | 0 running, 0 failed, 2 pending | elapsed 0m00s | ETA 2m00s",
    ]
    progress.show()  # the next plain line comes a minute later, not at every poll
    assert len(stream.getvalue().splitlines()) == 2
    quiet = io.StringIO()
    silent = SweepProgress(total=3, slots=1, enabled=False, stream=quiet, interactive=False)
    silent.event("started delta-seed0")
    silent.show(force=True)
    assert quiet.getvalue() == ""


def test_a_terminal_gets_a_bar_with_the_events_above_it():
    stream = io.StringIO()
    progress = SweepProgress(total=2, slots=1, stream=stream, interactive=True)
    progress.event("started delta-seed0 (attempt 1)")
    progress.close()
    text = stream.getvalue()
    assert "ablate: started delta-seed0 (attempt 1)\n" in text
    assert "\r" in text and "0/2" in text and "1 running" not in text
    assert "2 pending" in text
