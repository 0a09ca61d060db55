"""``emoeye train``: train the network on a dataset (see docs/models.md)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from models.cli import add_train_parser

    add_train_parser(sub)
