"""Errors of the escalations app beyond the shared domain errors."""
from rolloutops.exceptions import DomainError


class ContextTooLarge(DomainError):
    """The runtime sent more context than a reviewer can read or the database should hold."""

    status_code = 413
