"""Entry point of ``python -m devhost``."""

from devhost.cli import cli

if __name__ == "__main__":
    cli(prog_name="python -m devhost")
