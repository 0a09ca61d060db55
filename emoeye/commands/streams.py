"""``emoeye streams``: what LSL streams are visible and how roles would bind."""

from __future__ import annotations

import argparse
import json

from emoeye.commands.common import add_config_arg, load_acq_config


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "streams",
        help="list visible LSL streams and how each role would bind",
        description="List visible LSL streams and show which stream would play each role "
        "(gaze, gsr, hr, markers), naming any role that is missing.",
    )
    p.add_argument("--timeout", type=float, default=2.0, help="seconds to look (default 2)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    add_config_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from acquisition.lsl.binding import bind_roles
    from acquisition.lsl.live import discover

    config = load_acq_config(args.config)
    visible = discover(args.timeout)
    plan = bind_roles([s for s, _ in visible], config.rules)
    required = config.trial.required_roles
    if args.json:
        print(
            json.dumps(
                {
                    "streams": [
                        s.__dict__ | {"channel_labels": list(s.channel_labels)} for s, _ in visible
                    ],
                    "roles": {r: c.spec.key for r, c in plan.roles.items()},
                    "missing": plan.missing([*required, "markers"]),
                },
                default=str,
            )
        )
    else:
        print(f"{len(visible)} stream(s) visible:")
        for spec, _ in visible:
            print(f"  {spec.describe()}")
        print("Roles:")
        print(plan.explain([*required, "markers"]))
    return 1 if plan.missing([*required, "markers"]) else 0
