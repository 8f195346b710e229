"""Fixtures of the evaluation tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers.judge_helpers import StandInServer


@pytest.fixture
def server() -> Iterator[StandInServer]:
    """A well-behaved OpenAI-compatible judge server on 127.0.0.1 (tests.helpers.judge_helpers), closed after."""
    srv = StandInServer()
    yield srv
    srv.close()
