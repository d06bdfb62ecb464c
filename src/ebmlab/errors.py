"""The one exception type for mistakes a user can make.

The CLI turns an ``EBMError`` into a single line on stderr and exit status 2;
anything else is a bug in ebmlab and keeps its traceback.
"""


class EBMError(ValueError):
    """A user-facing error: the message names the problem and what to do about it."""


class RankError(EBMError):
    """An ``EBMError`` only this process of a multi-process run can see (its GPU is missing, it could not
    reach the others). The CLI prints an ``EBMError`` on rank 0 only, so that a mistake every rank makes
    reads as one line; this one every rank prints, or a failure on rank 1 alone would say nothing."""
