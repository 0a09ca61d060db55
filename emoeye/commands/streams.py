"""``emoeye streams``: what LSL streams are visible, how roles would bind, and whether the first
seconds of each bound stream look like what its role expects."""

from __future__ import annotations

import argparse
import json
import time

from emoeye.commands.common import add_config_arg, load_acq_config

SAMPLE_SECONDS = 4.0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "streams",
        help="list visible LSL streams, how each role would bind and whether its data looks right",
        description="List visible LSL streams and show which stream would play each role "
        "(gaze, gsr, hr, markers): the channels read and how the role is derived, the first "
        "values seen and whether they look plausible. Streams that play no role are listed "
        "with the reason; missing roles are named (exit status 1).",
    )
    p.add_argument("--timeout", type=float, default=2.0, help="seconds to look (default 2)")
    p.add_argument(
        "--sample",
        type=float,
        default=SAMPLE_SECONDS,
        metavar="SECONDS",
        help=f"seconds of data read from each bound stream to check it (default "
        f"{SAMPLE_SECONDS:g}; 0: no check)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    add_config_arg(p)
    p.set_defaults(func=run)


def sample_streams(infos: dict, seconds: float) -> dict:
    """The first ``seconds`` of each stream: key → ``(timestamps, values)`` as sent.

    Stamps are left as the device sent them (no clock correction): the checks look at
    intervals only.
    """
    import numpy as np
    import pylsl

    got: dict[str, tuple[list, list]] = {}
    inlets = {}
    for key, info in infos.items():
        try:  # a stream may vanish between discovery and now: it is then left out
            inlet = pylsl.StreamInlet(info, max_buflen=60, recover=False)
            inlet.open_stream(timeout=2.0)
        except Exception:
            continue
        inlets[key], got[key] = inlet, ([], [])
    try:
        end = time.monotonic() + seconds
        while inlets and time.monotonic() < end:
            for key, inlet in list(inlets.items()):
                try:
                    values, stamps = inlet.pull_chunk(timeout=0.0)
                except Exception:
                    del inlets[key]  # lost while sampling: keep what came
                    continue
                got[key][0].extend(stamps)
                got[key][1].extend(values)
            time.sleep(0.05)
    finally:
        inlets.clear()  # inlets close before the caller's outlets may go
    out = {}
    for key, (stamps, values) in got.items():
        ts = np.asarray(stamps, np.float64)
        n = infos[key].channel_count()
        string = infos[key].channel_format() == pylsl.cf_string
        vals = np.asarray(values, object if string else np.float64).reshape(len(ts), n)
        out[key] = (ts, vals)
    return out


def run(args: argparse.Namespace) -> int:
    from acquisition.lsl.binding import bind_roles, describe_reading
    from acquisition.lsl.live import discover
    from acquisition.lsl.plausibility import check_stream
    from acquisition.lsl.presets import ALL_ROLES

    config = load_acq_config(args.config)
    visible = discover(args.timeout)
    plan = bind_roles([s for s, _ in visible], config.rules)
    required = [*config.trial.required_roles, "markers"]
    infos = {s.key: info for s, info in visible}
    bound = {c.spec.key for c in plan.roles.values()}
    data = sample_streams({k: infos[k] for k in bound}, args.sample) if args.sample > 0 else {}
    report = {}
    for role, cand in sorted(plan.roles.items(), key=lambda rc: ALL_ROLES.index(rc[0])):
        entry = {
            "stream": cand.spec.key,
            "name": cand.spec.name,
            "kind": cand.reading.kind,
            "why": cand.why,
            "reading": describe_reading(cand.reading, cand.spec),
        }
        if args.sample > 0 and cand.spec.key not in data:
            entry |= {"plausible": "unknown", "reason": "the stream could not be read", "first": ""}
        elif cand.spec.key in data:
            try:
                verdict = check_stream(cand.reading, cand.spec, *data[cand.spec.key])
            except KeyError as exc:  # a rule naming a channel the data lacks
                entry |= {"plausible": "suspect", "reason": str(exc.args[0]), "first": ""}
            else:
                entry |= {
                    "plausible": verdict.verdict,
                    "reason": verdict.reason,
                    "first": verdict.first,
                    "samples": len(data[cand.spec.key][0]),
                }
        report[role] = entry
    missing = plan.missing(required)
    if args.json:
        print(
            json.dumps(
                {
                    "streams": [
                        s.__dict__ | {"channel_labels": list(s.channel_labels)} for s, _ in visible
                    ],
                    "roles": {r: c.spec.key for r, c in plan.roles.items()},
                    "readings": report,
                    "unbound": plan.unbound,
                    "missing": missing,
                },
                default=str,
            )
        )
        return 1 if missing else 0
    print(f"{len(visible)} stream(s) visible:")
    for spec, _ in visible:
        print(f"  {spec.describe()}")
    print("Roles:")
    print(plan.explain(required))
    if report:
        print("Readings:")
    for role, entry in report.items():
        print(f"  {role:8s} {entry['name']!r}: {entry['reading']}")
        if "plausible" in entry:
            head = "SUSPECT" if entry["plausible"] == "suspect" else entry["plausible"]
            print(f"{'':11s}first values ({entry.get('samples', 0)} samples): {entry['first']}")
            print(f"{'':11s}plausible: {head}: {entry['reason']}")
    return 1 if missing else 0
