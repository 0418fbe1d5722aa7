"""Exceptions raised by mien. The CLI prints these as one line; everything else is a bug."""


class MienError(Exception):
    """Base class for errors a user can fix (bad input, bad config, missing file)."""


class DataError(MienError):
    """A dataset source is missing, malformed or inconsistent."""


class ConfigError(MienError):
    """A configuration value is invalid."""


class CheckpointError(MienError):
    """A checkpoint or run directory is missing or inconsistent."""


class ModelError(MienError):
    """An unknown model name or bad model arguments."""
