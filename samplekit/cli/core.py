"""The core commands, registered through ``samplekit_register_commands`` like any plugin's.

Each command lives in its own module and imports torch only when it runs.
"""

from __future__ import annotations

from samplekit.hookspecs import hookimpl


@hookimpl
def samplekit_register_commands(cli) -> None:
    from samplekit.bench.command import bench_command
    from samplekit.cli.fit_solver import fit_solver_command
    from samplekit.cli.likelihood import likelihood_command
    from samplekit.cli.listing import list_command
    from samplekit.cli.sample import sample_command
    from samplekit.cli.train import train_command

    for command in (list_command, sample_command, bench_command, likelihood_command, train_command, fit_solver_command):
        cli.add_command(command)
