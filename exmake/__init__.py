"""exmake: a daemonless, filesystem-first build tool for data and compute pipelines."""

__version__ = "0.1.0"
