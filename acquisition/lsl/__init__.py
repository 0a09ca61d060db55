"""The LSL stream model: device presets, role binding and reading, live inlets, health and clocks.

Importing this package does not load pylsl; only :mod:`acquisition.lsl.live` and
:mod:`acquisition.lsl.config` touch liblsl.
"""
