"""A failed activity's message: short, specific, and free of connection secrets."""

from sqlalchemy.exc import StatementError

_MAX_LENGTH = 500


class StepFailedError(RuntimeError):
    """Raised by an activity so Durable retries it; its message becomes the step's error."""


def describe(error: BaseException) -> str:
    # SQLAlchemy's own text repeats the statement, its parameters and a help link; the
    # driver's message is what says what went wrong.
    cause: BaseException = error
    if isinstance(error, StatementError) and error.orig is not None:
        cause = error.orig
    text = " ".join(str(cause).split()) or type(cause).__name__
    return f"{type(cause).__name__}: {text}"[:_MAX_LENGTH]
