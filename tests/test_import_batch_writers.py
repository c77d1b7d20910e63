"""imports.batch_writers: two batches of an import written at once, taking turns for what is
shared, ending in file order; a failed batch takes the one after it down with it."""

import threading

import pytest

from imports import batch_writers
from imports.batch_writers import EarlierBatchFailed


def test_the_next_batch_works_before_its_turn_and_after_it_only_once_the_one_before_ended():
    events = []
    second_started = threading.Event()

    def first():
        events.append("1 before its turn")
        batch_writers.wait_turn()  # the first has no batch before it
        assert second_started.wait(5), "the second batch started while the first was written"
        events.append("1 ends")
        return "one"

    def second():
        events.append("2 before its turn")
        second_started.set()
        batch_writers.wait_turn()
        events.append("2 in its turn")
        return "two"

    with batch_writers.writing(in_pairs=True) as writers:
        ended = writers.submit(first) + writers.submit(second) + writers.finish()

    assert ended == ["one", "two"]
    assert events.index("2 before its turn") < events.index("1 ends")
    assert events.index("1 ends") < events.index("2 in its turn")


def test_at_most_two_batches_are_in_flight_and_results_come_in_file_order():
    running, most = set(), []
    lock = threading.Lock()

    def batch(number):
        def work():
            with lock:
                running.add(number)
                most.append(len(running))
            batch_writers.wait_turn()
            with lock:
                running.discard(number)
            return number

        return work

    with batch_writers.writing(in_pairs=True) as writers:
        ended = []
        for number in range(6):
            ended += writers.submit(batch(number))
        ended += writers.finish()

    assert ended == list(range(6))
    assert max(most) <= 2


def _write_all(*works):
    with batch_writers.writing(in_pairs=True) as writers:
        for work in works:
            writers.submit(work)
        return writers.finish()


def test_a_failed_batch_makes_the_next_roll_back_and_its_own_error_is_raised():
    after_turn = []

    def failing():
        raise ValueError("batch one failed")

    def next_batch():
        batch_writers.wait_turn()
        after_turn.append("reached")  # must not: the batch before failed

    with pytest.raises(ValueError, match="batch one failed"):
        _write_all(failing, next_batch)
    assert after_turn == []


def test_the_turn_of_a_batch_after_a_failed_one_raises():
    seen = []

    def failing():
        raise ValueError("no")

    def next_batch():
        try:
            batch_writers.wait_turn()
        except EarlierBatchFailed:
            seen.append("rolled back")
            raise

    with pytest.raises(ValueError, match="no"):
        _write_all(failing, next_batch)
    assert seen == ["rolled back"]


def test_without_pairs_each_batch_is_written_at_once_in_the_callers_thread():
    threads = []

    def work():
        batch_writers.wait_turn()
        threads.append(threading.current_thread().name)
        return len(threads)

    with batch_writers.writing(in_pairs=False) as writers:
        assert writers.submit(work) == [1]
        assert writers.submit(work) == [2]
        assert writers.finish() == []
    assert threads == [threading.current_thread().name] * 2
