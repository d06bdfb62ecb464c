"""The one exception type for mistakes a user can make.

The CLI turns an ``EBMError`` into a single line on stderr and exit status 2;
anything else is a bug in ebmlab and keeps its traceback.
"""
from contextlib import contextmanager
from typing import Iterator


class EBMError(ValueError):
    """A user-facing error: the message names the problem and what to do about it."""


class RankError(EBMError):
    """An ``EBMError`` only this process of a multi-process run can see (its GPU is missing, it could not
    reach the others). The CLI prints an ``EBMError`` on rank 0 only, so that a mistake every rank makes
    reads as one line; this one every rank prints, or a failure on rank 1 alone would say nothing."""


@contextmanager
def first_evaluation(name: str, shape: tuple[int, ...]) -> Iterator[None]:
    """Around f's first evaluation on what the user handed in (``name``, of ``shape``): a failure other than
    an EBMError — another event shape, dtype or device than f takes — becomes one EBMError naming the input
    and torch's first line, with the original chained for ``--debug``; a traceback from deep inside the
    user's network would not say which argument was wrong."""
    try:
        yield
    except EBMError:
        raise
    except Exception as e:
        first = str(e).splitlines()[0] if str(e) else ""
        raise EBMError(f"f fails on {name} of shape {tuple(shape)}: {type(e).__name__}: {first}; {name} must be "
                       "[B, *event] with the event shape, dtype and device f takes") from e
