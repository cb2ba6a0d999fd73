"""The one exception type that the CLI and the GUI turn into one readable line."""


class EmolensError(Exception):
    """A problem the user can fix (bad input, missing model, unwritable output).

    The message is a complete sentence that says what is wrong and, where possible, what to
    do; the CLI prints it on one line and exits non-zero, the GUI shows it in the window.
    """


def error_line(error: BaseException) -> str:
    """One line for the user: an ``EmolensError``'s own message; for any other error its type and
    first line, so that an OpenCV or ONNX Runtime error still says what failed (``cv2.error: ...``)."""
    if isinstance(error, EmolensError):
        return str(error)
    text = next((line.strip() for line in str(error).splitlines() if line.strip()), "")
    kind = type(error)
    package = kind.__module__.split(".")[0]
    name = kind.__name__ if package == "builtins" else f"{package}.{kind.__name__}"  # cv2.error, not error
    return f"unexpected error ({name})" + (f": {text}" if text else "")
