"""The one exception type that the CLI and the GUI turn into one readable line."""


class EmolensError(Exception):
    """A problem the user can fix (bad input, missing model, unwritable output).

    The message is a complete sentence that says what is wrong and, where possible, what to
    do; the CLI prints it on one line and exits non-zero, the GUI shows it in the window.
    """
