"""The `ozwald` command line: parse, make one SDK call, render.

Layout: `main` (global options, dispatch, errors to exit codes), `command` (what a
subcommand is and what it gets), `commands` (the registry), then one module per
subcommand (`host`) and one per renderer (`render_host`), with shared text helpers
in `text`.
"""
