"""Errors that carry their errno, as the kernel's return values do."""

import errno as _errno


class ModelError(Exception):
    """A refused operation: `errno` is what the kernel would return (positive)."""

    def __init__(self, err: int, msg: str = ""):
        super().__init__(err, msg or _errno.errorcode.get(err, str(err)))
        self.errno = err
        self.msg = msg

    def __str__(self) -> str:
        name = _errno.errorcode.get(self.errno, str(self.errno))
        return f"{name}: {self.msg}" if self.msg else name


class ConfigError(Exception):
    """A bad configuration: every problem found, each naming file and key."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))
