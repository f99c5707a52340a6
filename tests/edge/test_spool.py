"""The on-disk spool: order, de-duplication, bounds, durability across reopen."""

from __future__ import annotations

from pathlib import Path

from deeplens_lambda.spool import Spool


def test_fifo_dedupe_and_ack(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db")
    for i in range(5):
        assert spool.put(f"e{i}", "t", f"p{i}".encode())
    assert not spool.put("e2", "t", b"again")  # queued already
    items = spool.peek(3)
    assert [i.key for i in items] == ["e0", "e1", "e2"]
    spool.ack(items[0])
    assert not spool.put("e0", "t", b"late retry")  # delivered already: never sent twice
    assert [i.key for i in spool.peek()] == ["e1", "e2", "e3", "e4"]
    assert len(spool) == 4
    spool.close()


def test_survives_a_restart(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db")
    spool.put("a", "topic/a", b"1")
    spool.put("b", "topic/b", b"2")
    spool.ack(spool.peek(1)[0])
    spool.close()
    again = Spool(tmp_path / "spool.db")
    (item,) = again.peek()
    assert (item.key, item.topic, item.payload) == ("b", "topic/b", b"2")
    assert not again.put("a", "topic/a", b"1")
    again.close()


def test_bounded_drops_the_oldest_and_counts(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db", max_items=3)
    for i in range(5):
        spool.put(f"e{i}", "t", b"x")
    assert [i.key for i in spool.peek()] == ["e2", "e3", "e4"]
    assert spool.dropped == 2
    spool.close()
