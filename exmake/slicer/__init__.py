"""Splitting work into slices: byte ranges of files, forked slice workers, merging.

Imports nothing above it: these modules take paths, counts and callables,
never recipe objects.
"""
