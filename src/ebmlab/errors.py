"""The one exception type for mistakes a user can make.

The CLI turns an ``EBMError`` into a single line on stderr and exit status 2;
anything else is a bug in ebmlab and keeps its traceback.
"""


class EBMError(ValueError):
    """A user-facing error: the message names the problem and what to do about it."""
