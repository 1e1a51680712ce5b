"""The one exception type users see.

Every mistake a user can make (unknown dataset, missing path, IPC larger than a
class, corrupt synthetic-set file, NaN loss ...) is raised as :class:`FyiError`
with a single line that names the problem and the fix.  The ``fyi`` command
prints that line and exits with code 2; Python users can catch it.
"""


class FyiError(Exception):
    """A user-facing error whose message names the problem and the fix."""

    exit_code = 2

    def __init__(self, message: str):
        # Keep the message on one line: it is what the CLI prints.
        super().__init__(" ".join(str(message).split()))
