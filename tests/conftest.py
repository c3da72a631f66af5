"""Fixtures shared by the test modules. Module-scoped: each module that asks builds its own copy."""

import pytest
import torch

from tests.helpers.erasure_world import write_world
from tests.helpers.sids_inputs import write_sids_inputs
from tests.helpers.tiny_run_inputs import write_tiny_inputs


@pytest.fixture(scope="module")
def one_thread():
    """Tiny tensors run fastest on one thread, and the CPU is shared (OpenMP spin-waits made some
    modules 5-10x slower); the thread count is restored afterwards. Use it with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The erasure world (tests/helpers/erasure_world.py) with the causal backbone."""
    return write_world(tmp_path_factory.mktemp("world"))


@pytest.fixture(scope="module")
def tiny_inputs(tmp_path_factory):
    """(data_dir, sids_dir) of the tiny learnable dataset (tests/helpers/tiny_run_inputs.py)."""
    return write_tiny_inputs(tmp_path_factory.mktemp("tiny"))


@pytest.fixture()
def prepared(tmp_path):
    """(data folder, vectors file) of the 40-item dataset of tests/helpers/sids_inputs.py."""
    return write_sids_inputs(tmp_path)
