"""``emoeye evaluate``: metrics of a checkpoint on a dataset beside baselines (docs/models.md)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from models.cli import add_evaluate_parser

    add_evaluate_parser(sub)
