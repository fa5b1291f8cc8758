"""The `otaku` command line, by area: data, batch jobs, serving (``otaku.cli`` gathers them)."""
