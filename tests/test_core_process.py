"""Line framing of claude's stdout: any line length, any chunking, torn tail handed over intact."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from claude_run.process import LineFramer, exit_status


@settings(deadline=None)
@given(
    st.lists(st.binary(max_size=50).map(lambda b: b.replace(b"\n", b"")), max_size=20),
    st.booleans(),
    st.lists(st.integers(1, 64), min_size=1, max_size=20),
)
def test_any_chunking_gives_back_the_same_lines(lines: list[bytes], torn: bool, cuts: list[int]) -> None:
    data = b"".join(line + b"\n" for line in lines) + (b"tail-without-newline" if torn else b"")
    framer = LineFramer()
    out: list[bytes] = []
    pos = 0
    i = 0
    while pos < len(data):
        step = cuts[i % len(cuts)]
        out += framer.feed(data[pos : pos + step])
        pos += step
        i += 1
    assert out == lines
    assert framer.tail() == (b"tail-without-newline" if torn else b"")


def test_a_4mb_line_in_64k_chunks_is_one_line() -> None:
    big = b'{"type":"assistant","pad":"' + b"x" * (4 * 1024 * 1024) + b'"}'
    framer = LineFramer()
    got: list[bytes] = []
    for i in range(0, len(big) + 1, 65536):
        got += framer.feed((big + b"\n")[i : i + 65536])
    assert got == [big]


def test_exit_status_maps_signals_like_a_shell() -> None:
    assert exit_status(0) == 0
    assert exit_status(3) == 3
    assert exit_status(-9) == 137
    assert exit_status(-15) == 143
