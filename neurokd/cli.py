"""The ``neurokd`` command line: a click group whose subcommands are thin wrappers over the library.

Subcommands live in ``neurokd/commands/*.py`` and are imported only when invoked, so
``neurokd --help`` stays fast (no torch or Lava import). Errors the library raises as
:class:`neurokd.errors.NeurokdError` become one line on stderr and exit code 2 (1 for a failed
check); ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import importlib
import os
import sys

import click

from neurokd.errors import NeurokdError

# name -> (module, attribute, one-line help shown by `neurokd --help` without importing the module)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "train": ("neurokd.commands.train", "train", "Train a teacher and an SNN student (KD, activity and logits regularisation)."),
    "eval": ("neurokd.commands.train", "eval_cmd", "Re-evaluate a saved run on the test split."),
    "study": ("neurokd.commands.train", "study", "Train several methods over several seeds side by side; write summary.csv and a plot."),
    "data": ("neurokd.commands.data", "data", "Dataset tools: describe a dataset, generate the espeak-ng keyword set."),
    "export": ("neurokd.commands.export", "export", "Export a trained student (NIR, Lava simulation, netx, ONNX)."),
    "simulate": ("neurokd.commands.export", "simulate", "Run any NIR graph or lava-dl netx file in the Lava simulation and report spikes and energy."),
    "import": ("neurokd.commands.nirimport", "import_cmd", "Wrap a third-party NIR graph as a runnable PyTorch module and check it."),
    "map": ("neurokd.commands.map", "map_cmd", "Place a network on Loihi cores, check it fits, cost every time step (cores, latency, energy with routing)."),
    "report": ("neurokd.commands.report", "report", "Compare runs: summary.csv/.md/.tex and figures of accuracy, activity, SynOps, energy."),
    "tune": ("neurokd.commands.tune", "tune", "Search the loss weights for the accuracy/activity/energy front (Optuna; several workers)."),
}


class LazyGroup(click.Group):
    """A click group that imports a subcommand's module only when that subcommand runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attr, _ = COMMANDS[name]
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, helptext) for name, (_, _, helptext) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors.")
@click.version_option(package_name="neurokd")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """neurokd: train sparse SNN students with distillation, run them on a Loihi model, report energy.

    A typical session: `neurokd train` (digits by default), then
    `neurokd export runs/<run> --target lava`, then `neurokd report runs/*`.
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    if debug:
        os.environ["NEUROKD_DEBUG"] = "1"


def _debug_requested(argv: list[str]) -> bool:
    return "--debug" in argv or os.environ.get("NEUROKD_DEBUG") == "1"


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the group, turning neurokd errors into one line and an exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        cli.main(args=argv, prog_name="neurokd", standalone_mode=False)
    except NeurokdError as exc:
        if _debug_requested(argv):
            raise
        click.echo(f"neurokd: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("neurokd: interrupted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        click.echo("neurokd: interrupted (finished files were kept)", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2 if isinstance(exc, click.UsageError) else exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    sys.exit(0)
