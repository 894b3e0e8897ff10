"""Errors that the CLI turns into one line on stderr and exit code 2.

Everything a user can get wrong (a missing model, a group size that does not divide a layer,
too little calibration text, a foreign checkpoint, ...) raises a subclass of `FPTQError` with a
message that says what is wrong and what would work. Anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

__all__ = [
    "FPTQError",
    "ModelError",
    "ConfigError",
    "CalibrationError",
    "CheckpointError",
    "OutputExistsError",
    "HubUnavailableError",
    "EvalDataError",
]


class FPTQError(Exception):
    """A user-facing error: its message is printed as one line."""


class ModelError(FPTQError):
    """The model is missing, cannot be loaded, or its architecture is not supported."""


class ConfigError(FPTQError):
    """An invalid quantization or calibration setting (e.g. a group size that does not divide)."""


class CalibrationError(FPTQError):
    """Calibration data is empty or too short, or activations are not finite."""


class CheckpointError(FPTQError):
    """A quantized folder is truncated, corrupted, foreign or from an unknown format version."""


class OutputExistsError(FPTQError):
    """The output folder exists and --overwrite was not given."""


class HubUnavailableError(FPTQError):
    """The Hugging Face hub could not be reached for a model or data set that needs it."""


class EvalDataError(FPTQError):
    """Evaluation data is missing or too short for what was asked."""
