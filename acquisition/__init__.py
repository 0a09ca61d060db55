"""Acquisition: LSL streams in, time-indexed ring buffers, trials out; simulator; XDF.

Knows nothing of torch or Qt.
"""
