"""Errors a user can cause and fix. The CLI prints them as one line and exits with code 2."""


class JaxdreamError(Exception):
    """Base class of every error caused by the user's input (files, names, settings)."""


class CheckpointError(JaxdreamError):
    """A checkpoint file is missing, corrupt, or does not fit the model."""


class DataError(JaxdreamError):
    """MNIST is not available where it was looked for."""


class ImageError(JaxdreamError):
    """An input image cannot be read, or an output image cannot be written."""


class ObjectiveError(JaxdreamError, ValueError):
    """An objective names an unknown layer, or a map that the layer does not have."""


class ConfigError(JaxdreamError, ValueError):
    """A configuration value is out of its range."""


class ResourceError(JaxdreamError):
    """The work does not fit the device's memory; the message says what to lower."""


class NumericalError(JaxdreamError):
    """A computation gave NaN or infinite values (settings or inputs at their limits)."""
