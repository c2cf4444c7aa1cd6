"""__main__ runs the s2s_export command line; subcommands are registered in cli.COMMANDS."""

from s2s_export.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
