"""What every checking subcommand shares: `--json`, and an exit status a CI job can gate on.

Exit status: 0 when the report is ok (its verdict is neither "fail" nor "error"), 1 when it is not, 2 for
bad usage (argparse's own errors, and the `ValueError`s `recipes.cli.main` turns into a message).
"""

import contextlib
import json
import sys


def add_json_argument(parser):
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the report as JSON (its to_dict()) on stdout and nothing else; progress goes to stderr",
    )


@contextlib.contextmanager
def report_output(args):
    """While the check runs: with `--json`, whatever it prints goes to stderr, so stdout holds the JSON alone."""
    if args.json:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    else:
        yield


def finish(args, report, text=None):
    """Prints `report` (its JSON with `--json`, else `text`, by default the report itself); returns the exit status."""
    print(json.dumps(report.to_dict()) if args.json else (str(report) if text is None else text), flush=True)
    return exit_status(report)


def exit_status(*reports):
    """0 when every report is ok, else 1."""
    return 0 if all(report.ok for report in reports) else 1
