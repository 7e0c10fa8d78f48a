"""The master's metrics exporter reads the workers' files while workers come and go."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

pytest.importorskip("prometheus_client")

from gunicorn_asgi._exporter import _LiveCollector
from prometheus_client.mmap_dict import MmapedDict


def _size(path: Path) -> None:
    """What a worker does next: prometheus_client sizes the file and writes its header."""
    MmapedDict(str(path)).close()  # type: ignore[no-untyped-call]


def test_a_worker_file_scraped_before_it_is_sized_is_read_again(tmp_path: Path) -> None:
    # prometheus_client creates a worker's file empty and then sizes it: a scrape in between must not fail (it
    # answered 500 during worker recycling), but read the directory again once the file is whole.
    path = tmp_path / "counter_4242.db"
    path.touch()
    sized = threading.Timer(0.005, _size, (path,))
    sized.start()
    try:
        assert list(_LiveCollector(str(tmp_path)).collect()) == []
    finally:
        sized.join()


def test_a_file_that_stays_broken_is_still_an_error(tmp_path: Path) -> None:
    (tmp_path / "counter_4242.db").touch()
    with pytest.raises(Exception, match="unpack_from"):
        list(_LiveCollector(str(tmp_path)).collect())
