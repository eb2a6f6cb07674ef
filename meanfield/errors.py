"""The one exception type for bad user input.

Everything a user can get wrong (a config key, a value, a data file, an output
path) raises :class:`InputError` with a one-line message naming the culprit;
the command line turns it into that line on stderr and exit status 2.
"""


class InputError(ValueError):
    """Invalid user input: the message names the key, value or path at fault."""
