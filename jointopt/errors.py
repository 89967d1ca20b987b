"""The exceptions jointopt raises.

Every error derives from :class:`JointoptError` and also from the builtin that matches its
meaning, so ``except ValueError`` keeps working for callers that do not know jointopt.
The CLI prints ``str(error)`` as one line and exits with code 1.
"""


class JointoptError(Exception):
    """Root of every error jointopt raises on purpose."""


class ConfigError(JointoptError, ValueError):
    """A configuration value is invalid; the message names the key, the value and the options."""


class UnknownNameError(JointoptError, KeyError):
    """A registry lookup failed; the message lists the close matches."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class UnsupportedOpError(JointoptError, TypeError):
    """``convert`` met an operation it cannot make searchable."""


class DataError(JointoptError, OSError):
    """A data-set file is missing, incomplete or corrupt."""


class ExportError(JointoptError, ValueError):
    """An export or a manifest is invalid."""


class DivergedError(JointoptError, ArithmeticError):
    """Training stopped being meaningful: a loss, cost or weight is no longer finite, or the loss
    exploded. In a trial, the study records the reason, marks the trial failed and goes on."""
