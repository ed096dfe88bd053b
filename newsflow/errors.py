"""The base of every error meant for a human at a terminal.

Anything raised as a ``NewsflowError`` is printed by the CLI as one line (what happened, what
to do) with a non-zero exit; anything else is a bug and keeps its traceback.
"""


class NewsflowError(Exception):
    """An expected failure with an actionable message."""
