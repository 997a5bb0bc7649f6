"""A shim for tools that still run `setup.py`: everything is in pyproject.toml (PEP 621)."""

from setuptools import setup

setup()
