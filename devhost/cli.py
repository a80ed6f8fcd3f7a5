"""``python -m devhost``: options, start-up errors as plain messages, signals, exit codes."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from devhost.host import Host, HostOptions, StartupError, prepare_app
from devhost.logging_setup import configure_logging

log = logging.getLogger("devhost.host")

EXIT_OK = 0
EXIT_CRASHED = 1
EXIT_STARTUP = 2

cli = typer.Typer(add_completion=False, help="Run the function app locally, without Core Tools.")


async def serve(options: HostOptions) -> int:
    loaded, config = prepare_app(options)
    host = Host(options, loaded, config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals_seen = 0

    def on_signal(signum: int) -> None:
        nonlocal signals_seen
        signals_seen += 1
        if signals_seen > 1:
            log.warning("second %s: exiting now", signal.Signals(signum).name)
            os._exit(EXIT_CRASHED)
        log.info("%s received, shutting down", signal.Signals(signum).name)
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        await host.start()
        await stop.wait()
    finally:
        await host.stop()
    return EXIT_OK


def run(options: HostOptions, *, verbose: bool = False) -> int:
    configure_logging(verbose)
    try:
        return asyncio.run(serve(options))
    except StartupError as exc:
        print(f"devhost: cannot start: {exc}", file=sys.stderr)
        return EXIT_STARTUP


@cli.command()
def main(
    port: Annotated[int, typer.Option(help="Port for HTTP routes and the Durable API.")] = 7071,
    state_dir: Annotated[
        Path, typer.Option("--state-dir", help="Where orchestration state is kept.")
    ] = Path(".devhost"),
    app: Annotated[
        str, typer.Option(help="App module name, or path to its .py file or folder.")
    ] = "function_app",
    settings: Annotated[
        Path, typer.Option(help="local.settings.json whose Values become app settings.")
    ] = Path("local.settings.json"),
    verbose: Annotated[bool, typer.Option(help="Debug logging, with tracebacks.")] = False,
) -> None:
    options = HostOptions(app=app, port=port, state_dir=state_dir, settings=settings)
    raise typer.Exit(run(options, verbose=verbose))
