"""The one exception type the command line turns into `action-rec CMD: error: ...` and exit 2.

Errors a user can fix (a bad setting, a missing file, an output in the way) derive from UsageError, so
each command catches one type instead of a list that drifts out of date; anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations


class UsageError(ValueError):
    """Bad input or settings; the message names what is wrong and, where it can, the fix."""


class BackboneWeightsError(RuntimeError):
    """The requested weights could not be obtained or do not fit the backbone; the message says how to fix it.
    (Here, not in backbones/, so the command line can catch it without importing torch.)"""
