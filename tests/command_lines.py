"""Whether a command line is one `inspect-tinker` accepts, checked without running the command."""

from unittest import mock

from inspect_tinker import cli


def accepted(argv: list[str]) -> bool:
    """True when click parses `argv` (subcommands, options, their values and arguments) and
    would start the command; the command's body, which does the work, is not run. A refused
    command line prints click's error on stderr, for the failing test's output."""
    with mock.patch.object(cli._Command, "invoke", return_value=0):
        return cli.main(argv) == 0
