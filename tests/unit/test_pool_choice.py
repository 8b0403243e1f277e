"""The local pool's choice of the next chunk for a worker (scan/engine.py choose)."""

from __future__ import annotations

from elfcost.scan.engine import WINDOW, _Chunk, choose


def _take(waiting: list[_Chunk[str]], elsewhere: set[str]) -> _Chunk[str]:
    """One pick as LocalPool._pick makes it: the chosen chunk leaves, older ones are passed."""
    window = waiting[:WINDOW]
    best = choose(window, elsewhere)
    for older in window[:best]:
        older.passed += 1
    return waiting.pop(best)


def _waiting(n: int, every: int) -> list[_Chunk[str]]:
    """n chunks; every `every`-th needs libLLVM, each other one a library of its own."""
    return [
        _Chunk([f"prog{i}"], frozenset({"libLLVM-14.so.1"} if i % every == 0 else {f"lib{i}"}))
        for i in range(n)
    ]


def test_a_worker_busy_with_a_large_library_keeps_the_chunks_that_need_it() -> None:
    # Worker A reads libLLVM (0.2 s); meanwhile worker B asks for chunk after chunk (~10 ms
    # each). B must not take one that needs libLLVM while any other is there: it would read
    # libLLVM again. 100 picks in a row: with a window of 32, B was sent one after 32.
    waiting = _waiting(400, 4)
    taken = [_take(waiting, {"libLLVM-14.so.1"}) for _ in range(100)]
    assert not [c.files for c in taken if "libLLVM-14.so.1" in c.shares]
    # A, when it asks, takes the oldest of them first.
    first = _take(waiting, set())
    assert first.files == ["prog0"]


def test_a_chunk_passed_over_window_times_is_taken_next() -> None:
    # Affinity never starves a chunk: once passed over WINDOW times, the next worker to ask
    # takes it, whatever it has to read for it.
    waiting = _waiting(WINDOW * 4, 4)
    taken = [_take(waiting, {"libLLVM-14.so.1"}) for _ in range(WINDOW + 1)]
    llvm = [c for c in taken if "libLLVM-14.so.1" in c.shares]
    assert [c.files for c in llvm] == [["prog0"]]
    assert taken[-1] is llvm[0]


def test_without_anything_read_elsewhere_chunks_go_in_input_order() -> None:
    waiting = _waiting(10, 3)
    assert [_take(waiting, set()).files[0] for _ in range(10)] == [f"prog{i}" for i in range(10)]


def test_the_choice_is_the_least_cost_of_the_window() -> None:
    # choose() stops at the oldest chunk that shares nothing with `elsewhere`; on random
    # windows its answer is the definition's: the least of shared x AFFINITY + age.
    import random

    from elfcost.scan.engine import AFFINITY

    rng = random.Random(3)
    libs = [f"lib{i}" for i in range(12)]
    for _ in range(2000):
        window = [
            _Chunk([f"p{i}"], frozenset(rng.sample(libs, rng.randint(0, 4))))
            for i in range(rng.randint(1, WINDOW))
        ]
        elsewhere = set(rng.sample(libs, rng.randint(0, 12)))
        cost = [len(c.shares & elsewhere) * AFFINITY + i for i, c in enumerate(window)]
        assert choose(window, elsewhere) == cost.index(min(cost))
