"""ibcheck's numeric layer: trains real networks and measures what theory predicts.

Builds on :mod:`theory` (never the other way round).  The check protocol lives in
:mod:`numerics.checks`; the command line in :mod:`numerics.cli`.
"""
