"""User-facing errors: the CLI prints their message as one line and exits non-zero."""


class SatmError(Exception):
    """An error caused by input the user can fix; its message is the whole explanation."""
