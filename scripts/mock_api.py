"""Serve the test suite's mock Anthropic Messages API until killed (for scripts/demo.sh).

Every /v1/messages request gets a short text answer with fixed, known usage figures, so the demo's
recorded tokens and cost can be checked by eye: 48 input, 1513 cache write, 4101 cache read,
12 output tokens per request (claude-sonnet-4-5: $0.00722805 at list prices).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.mock_anthropic import MockAnthropic, Usage, text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url-file", type=Path, required=True, help="where to write the base URL once listening")
    args = ap.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    reply = text("Hello! (an answer from the local mock API)", usage=Usage(48, 1513, 0, 4101, 12))
    with MockAnthropic([reply], when_done="repeat") as api:
        args.url_file.write_text(api.url)
        stop.wait()


if __name__ == "__main__":
    main()
