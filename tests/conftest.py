"""Shared test setup."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def one_thread_for_shared_fixtures():
    """The same for module- and session-scoped fixtures, which are set up before ``one_thread``: a
    reference run made there must compute like the test that compares with it."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def one_thread():
    """Run in-process torch work on one thread.

    The test networks are tiny, so one thread is as fast as two, and it cannot oversubscribe a busy
    2-core machine (two threads fighting another process can be a hundred times slower). Results stay
    deterministic either way; subprocess tests set their own threads.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
