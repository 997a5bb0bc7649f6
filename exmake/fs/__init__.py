"""The only code that touches the on-disk layout, content hashes and LMDB.

Nothing here imports from above `exmake.fs` (except the leaf `exmake.errors`):
these modules take paths and plain data, never recipe objects.
"""
