"""Errors that end a run with a message a user can act on.

Exit codes (``sluice`` CLI): 0 ok, 2 bad config or input (``UserError``), 75 an input that has
not arrived yet (``AnalysisPending``: EX_TEMPFAIL from sysexits.h, so a scheduler retries later),
1 any other failure.
"""

EX_TEMPFAIL = 75


class UserError(Exception):
    """Bad config, data or arguments: the run stops before (or without) writing output."""

    exit_code = 2


class ConfigError(UserError):
    """A config key is unknown, mistyped or out of range."""


class DataError(UserError):
    """Input data fails a check at the door. Names the file, the field and what was expected."""

    def __init__(self, path, field: str, expected: str, found: str | None = None):
        self.path, self.field, self.expected, self.found = str(path), field, expected, found
        msg = f"{path}: field '{field}': expected {expected}"
        if found is not None:
            msg += f", found {found}"
        super().__init__(msg)

    def __reduce__(self):
        # Ray ships exceptions between processes by pickling; keep the structured fields.
        return (type(self), (self.path, self.field, self.expected, self.found))


class AnalysisPending(Exception):
    """The analysis for a time is not in the store yet: try again later (exit 75), not a bad input.

    Names the store, the time asked for and the newest time the store holds."""

    exit_code = EX_TEMPFAIL

    def __init__(self, path, wanted, newest):
        self.path, self.wanted, self.newest = str(path), str(wanted), str(newest)
        super().__init__(f"{path}: the analysis for {wanted} has not arrived yet (the store ends "
                         f"at {newest}); retry once it is there")

    def __reduce__(self):
        return (type(self), (self.path, self.wanted, self.newest))
