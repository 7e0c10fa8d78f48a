"""The one error a worker reports when it cannot serve with the configuration it was given."""

from __future__ import annotations


class StartupError(Exception):
    """The worker cannot start: the message names the setting (and its command-line flag) and what to do.

    The worker logs it and exits with Gunicorn's WORKER_BOOT_ERROR status, so the arbiter stops with that
    message instead of rebooting workers that would fail the same way.
    """
