"""User-facing errors."""


class AuditError(Exception):
    """A user-facing error; its message is one clear line (or several, one problem per line)."""
