"""`bounded_cache`: `functools.lru_cache`'s use here, for modules on `echoscu`'s start-up path.

Importing `functools` brings `collections`, `reprlib` and a `namedtuple` built with `exec`:
about 2 ms of `echoscu`'s start-up, for three small caches of pure functions. These caches see
few distinct keys (an SCP's answers, a client's request, peer addresses), so the oldest entry
is dropped when one is full (first in, first out): a hostile stream of distinct keys still
costs bounded memory. Exceptions are not cached; keyword calls are passed through uncached.
Safe to share between threads (an SCP in one, a client in another): each step is one dict
operation, and an eviction another thread got to first is simply skipped.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: its import is part of the start-up this module avoids
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import ParamSpec, TypeVar

    P = ParamSpec("P")
    R = TypeVar("R")


def bounded_cache(maxsize: int) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Cache a function's results by its positional (hashable) arguments, at most `maxsize`."""
    if maxsize < 1:
        raise ValueError("maxsize must be at least 1")

    def decorate(function: Callable[P, R]) -> Callable[P, R]:
        cache: dict[tuple[object, ...], R] = {}

        def cached(*args: P.args, **kwargs: P.kwargs) -> R:
            if kwargs:
                return function(*args, **kwargs)
            try:
                return cache[args]
            except KeyError:
                pass
            result = function(*args, **kwargs)
            if len(cache) >= maxsize:
                try:  # noqa: SIM105 - contextlib (and functools) cost start-up here
                    del cache[next(iter(cache))]
                except (KeyError, RuntimeError, StopIteration):
                    pass  # another thread changed the cache meanwhile: the bound still holds
            cache[args] = result
            return result

        cached.__name__ = function.__name__
        cached.__qualname__ = function.__qualname__
        cached.__doc__ = function.__doc__
        return cached

    return decorate
