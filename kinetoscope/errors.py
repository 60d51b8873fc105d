"""The project's error types: user mistakes carry the bad value and the limit, and the CLI prints them in one line."""

from __future__ import annotations


class KinetoscopeError(Exception):
    """Base of every error a user can cause; the CLI turns it into one line on stderr and exit code 2."""


class MediaError(KinetoscopeError):
    """A media file is missing, empty, corrupt, truncated, or has no video stream."""

    def __init__(self, path: object, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class SizeError(KinetoscopeError):
    """A requested size or frame count is impossible or past the limits."""


class DataError(KinetoscopeError):
    """A dataset, manifest or shard is missing or malformed."""
