"""The command line run in this process by click's runner, for checks of what it says on errors: each
call saves the Python and torch start-up (~4 s) a subprocess pays. Runs that must succeed as a user's
do stay subprocesses of the installed console script."""

from types import SimpleNamespace


def cli_in_process(*args) -> SimpleNamespace:
    """``polymodal ARGS…`` → (returncode, stdout, stderr), 200 columns wide as the subprocess runs are."""
    from typer.testing import CliRunner

    from polymodal.cli import app

    result = CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})
    return SimpleNamespace(returncode=result.exit_code, stdout=result.stdout, stderr=result.stderr)
