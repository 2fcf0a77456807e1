"""The per-process cache of the directory's lookups (``store.directory_cache``), on its own: what it keeps,
what it forgets, and when it reads the directory's version."""

from __future__ import annotations

import asyncio

from presenced.store.directory_cache import DirectoryCache


class Version:
    """The directory's version as a test sets it; counts its readings."""

    def __init__(self) -> None:
        self.value = 0
        self.reads = 0

    async def __call__(self) -> int:
        self.reads += 1
        return self.value


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def lookup(answers: list[object]) -> tuple[list[int], object]:
    """A load that answers from ``answers`` in turn; and the list its calls are counted in."""
    calls: list[int] = []

    async def load() -> object:
        calls.append(1)
        return answers[len(calls) - 1]

    return calls, load


def found(value: object) -> bool:
    return value is not None


async def test_a_lookup_is_kept_until_the_directory_changes_here() -> None:
    cache = DirectoryCache(Version(), monotonic=Clock())
    calls, load = lookup(["first", "second"])
    assert await cache.get("k", load, found) == "first"
    assert await cache.get("k", load, found) == "first"
    cache.forget()
    assert await cache.get("k", load, found) == "second"
    assert len(calls) == 2


async def test_nothing_found_is_not_kept() -> None:
    cache = DirectoryCache(Version(), monotonic=Clock())
    calls, load = lookup([None, "made since"])
    assert await cache.get("k", load, found) is None
    assert await cache.get("k", load, found) == "made since"
    assert len(calls) == 2


async def test_the_version_is_read_once_a_second_and_a_moved_one_empties_the_cache() -> None:
    version, clock = Version(), Clock()
    cache = DirectoryCache(version, monotonic=clock)
    calls, load = lookup(["first", "second", "third"])
    assert await cache.get("k", load, found) == "first"
    clock.now += 0.9
    assert await cache.get("k", load, found) == "first"
    assert version.reads == 1
    clock.now += 0.2  # a second since the last reading began
    assert await cache.get("k", load, found) == "first"  # the same version: kept
    assert version.reads == 2
    version.value = 7  # another process changed the directory
    clock.now += 1.0
    assert await cache.get("k", load, found) == "second"
    assert (version.reads, len(calls)) == (3, 2)


async def test_a_lookup_that_began_before_the_cache_was_emptied_is_not_kept() -> None:
    cache = DirectoryCache(Version(), monotonic=Clock())
    started, release = asyncio.Event(), asyncio.Event()
    answers = iter(["read before the change", "read after it"])

    async def slow() -> object:
        started.set()
        await release.wait()
        return next(answers)

    pending = asyncio.create_task(cache.get("k", slow, found))
    await started.wait()
    cache.forget()  # the change commits while the lookup is on its way
    release.set()
    assert await pending == "read before the change"  # its caller gets it; nobody after it does
    assert await cache.get("k", slow, found) == "read after it"


async def test_lookups_due_a_reading_wait_for_one_reading() -> None:
    version = Version()
    cache = DirectoryCache(version, monotonic=Clock())
    _, load = lookup(["one"] * 10)
    await asyncio.gather(*(cache.get(n, load, found) for n in range(5)))
    assert version.reads == 1


async def test_at_most_max_entries_are_kept_the_oldest_going_first() -> None:
    cache = DirectoryCache(Version(), max_entries=2, monotonic=Clock())
    calls: list[str] = []

    def load(name: str) -> object:
        async def answer() -> object:
            calls.append(name)
            return name

        return answer

    for name in ("a", "b", "c"):
        await cache.get(name, load(name), found)
    await cache.get("b", load("b"), found)
    await cache.get("a", load("a"), found)
    assert calls == ["a", "b", "c", "a"]
