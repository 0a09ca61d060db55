"""``emoeye info``: what a recording holds, and which stream would play each role.

Per stream: id, name, type, channels and their labels, format, nominal and effective rate,
samples, first and last stamp, clock offsets and the clock it was stamped on (LSL or Unix
epoch); then the file's warnings; then the role binding under ``--config``, with why every
other candidate was passed over. ``replay`` and ``dataset build`` print the same binding lines
before they start.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from emoeye.commands.common import (
    add_config_arg,
    add_dejitter_arg,
    load_acq_config,
    open_recording,
    quiet_reader_log,
)
from emoeye.errors import CliError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "info",
        help="what an XDF recording holds and which stream would play each role",
        description="Describe XDF recordings: every stream (id, name, type, channels, format, "
        "rates, samples, first and last stamp, clock offsets, LSL or Unix-epoch clock), the "
        "file's problems, and the role each stream would play under --config, with why every "
        "other candidate was not chosen.",
    )
    p.add_argument("files", nargs="+", type=Path, metavar="FILE.xdf", help="recordings")
    add_config_arg(p)
    add_dejitter_arg(p)
    p.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object per file (streams, roles: role -> stream_id, warnings)",
    )
    p.set_defaults(func=run)


def describe(source, config) -> dict:
    """JSON-ready description of an opened recording under ``config``.

    Parameters
    ----------
    source
        An :class:`~acquisition.xdf.source.XdfSource`.
    config
        The acquisition config (binding rules, required roles).

    Returns
    -------
    dict
        :meth:`XdfSource.summary` plus ``roles`` (role → stream id), ``binding`` (the lines
        :func:`emoeye.commands.common.print_binding` prints), ``rejected`` (role → [[stream,
        why]]), ``unused`` ([[stream, why]]), ``missing`` (role → why), ``plausibility`` (role →
        ``verdict``, ``reason``, ``first`` values) and ``foreign_clock`` (stream id → offset, s).
    """
    from acquisition.offline_acquisition import bind_offline

    binding = bind_offline(source, config)
    ids = {s.spec.key: s.stream_id for s in source.xdf_streams}
    out = source.summary()
    out.update(
        roles={role: ids[c.spec.key] for role, c in binding.plan.roles.items()},
        binding=binding.lines(),
        rejected={role: [list(x) for x in r] for role, r in binding.rejected.items() if r},
        unused=[list(x) for x in binding.unused],
        missing=dict(binding.missing),
        plausibility={
            role: {"verdict": v.verdict, "reason": v.reason, "first": v.first}
            for role, v in binding.plausibility.items()
        },
        foreign_clock={str(k): round(v, 3) for k, v in source.foreign.items()},
    )
    return out


def _stamp(t: float | None) -> str:
    return "-" if t is None else f"{t:.3f}"


def stream_lines(summary: dict) -> list[str]:
    """One line per stream of :func:`describe`'s (or :meth:`XdfSource.summary`'s) output."""
    from acquisition.streams import shorten

    lines = []
    for st in summary["streams"]:
        rate = "irregular" if not st["nominal_srate"] else f"nominal {st['nominal_srate']:g} Hz"
        if st["samples"] > 1:
            rate += f", effective {st['effective_srate']:.4g} Hz"
        labels = st["channel_labels"]
        shown = ", ".join(shorten(x, 20) for x in labels[:8]) + (", ..." if len(labels) > 8 else "")
        offsets = st["clock_offsets"]
        clock = f"{st['clock']} clock"
        if st.get("mapped_to_lsl"):
            clock = "Unix-epoch stamps mapped onto the LSL clock"
        if offsets["count"]:
            clock += (
                f", {offsets['count']} clock offset(s) "
                f"{offsets['first_s']:+.6f} .. {offsets['last_s']:+.6f} s"
            )
        else:
            clock += ", no clock offsets"
        if st["foreign_clock_offset_s"] is not None:
            clock += f", FOREIGN clock ({st['foreign_clock_offset_s']:+.1f} s)"
        lines.append(
            f"  stream {st['stream_id']} {shorten(st['name'])!r} ({shorten(st['type'])}): "
            f"{st['channel_count']} ch {shorten(st['channel_format'])}"
            + (f" [{shown}]" if labels else "")
            + f", {rate}, {st['samples']} sample(s), "
            f"{_stamp(st['first_stamp'])} .. {_stamp(st['last_stamp'])} s; {clock}"
        )
    return lines


def run(args: argparse.Namespace) -> int:
    quiet_reader_log(args)
    config = load_acq_config(args.config)
    failed = 0
    for i, path in enumerate(args.files):
        try:
            source = open_recording(path, dejitter=args.dejitter)
        except CliError as exc:
            if len(args.files) == 1:
                raise
            import sys

            print(f"emoeye: error: {exc}", file=sys.stderr)
            failed += 1
            continue
        info = describe(source, config)
        if args.json:
            print(json.dumps(info, default=str))
            continue
        if i:
            print()
        print(
            f"{path}: {info['duration_s']:.1f} s on the common clock, participant "
            f"{info['participant'] or 'unknown'}, {len(info['streams'])} stream(s)"
            + (", stamps dejittered" if args.dejitter else "")
        )
        for line in stream_lines(info):
            print(line)
        if info["warnings"]:
            print(f"{len(info['warnings'])} problem(s) with the file:")
            for w in info["warnings"]:
                print(f"  {w}")
        for line in info["binding"]:
            print(line)
    return 2 if failed else 0
