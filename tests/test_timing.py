import time

import pytest
import torch

from dlnotes import timing


def test_turns_alternate_and_count():
    calls = []
    times = timing.time_in_turns({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
                                 repeats=4, warmup=1)
    assert calls == ["a", "b", "a", "b", "b", "a", "a", "b", "b", "a"]  # warm-up, then A B, B A, ...
    assert [len(t) for t in times.values()] == [4, 4] and all(s >= 0 for t in times.values() for s in t)


def test_bad_arguments_are_errors():
    with pytest.raises(ValueError, match="repeats"):
        timing.time_in_turns({"a": lambda: None}, repeats=0)
    with pytest.raises(ValueError, match="warmup"):
        timing.time_in_turns({"a": lambda: None}, repeats=1, warmup=-1)
    with pytest.raises(ValueError, match="empty"):
        timing.time_in_turns({}, repeats=1)


def test_seconds_measure_the_call():
    assert 0.02 <= timing.seconds(lambda: time.sleep(0.02)) < 1.0
    calls = []
    best = timing.best_seconds(lambda: (calls.append(1), time.sleep(0.01 if len(calls) > 2 else 0.05)),
                               repeats=3, warmup=1)
    assert len(calls) == 4 and 0.01 <= best < 0.05  # the fastest call, not the mean or the first


def test_the_cpu_needs_no_synchronisation_and_a_bad_device_is_an_error():
    timing.synchronize("cpu")  # a no-op, must not raise
    with pytest.raises(RuntimeError):
        timing.synchronize("nonsense")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_gpu_work_is_waited_for():
    A = torch.rand(2048, 2048, device="cuda")
    torch.cuda.synchronize()
    queued = time.perf_counter()
    A @ A
    queued = time.perf_counter() - queued
    assert timing.seconds(lambda: A @ A, device="cuda") > queued
