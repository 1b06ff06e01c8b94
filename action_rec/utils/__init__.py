"""Helpers every stage uses: atomic file writes (io), the one-line UsageError (errors), range-checked argparse
types (argtypes), checks on output paths before any work (pathcheck) and lazy package exports (lazy).

Takes nothing from the pipeline and hands nothing on: no module here imports another stage.
"""
