"""``emoeye trials``: headless live trial cutting, one line per trial as it closes."""

from __future__ import annotations

import argparse
import json
import signal
import threading
import time

from emoeye.commands.common import add_config_arg, load_acq_config, warm_trial_path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "trials",
        help="cut live trials and print each as it closes, with its quality figures",
        description="Bind the live LSL streams to roles, cut a trial at every stimulus onset and "
        "print it when its 5-s window closes, with coverage per stream, gaze validity, blinks "
        "and gaps. Ratings are printed as they attach. Ctrl-C stops (pending trials are cut).",
    )
    add_config_arg(p)
    p.add_argument("--wait", type=float, default=10.0, help="seconds to wait for streams")
    p.add_argument("--seconds", type=float, default=0.0, help="stop after this long (0: never)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=run)


def format_trial(summary: dict) -> str:
    """One human line for a trial summary (an onset whose cut failed says why instead)."""
    q = summary["quality"]
    if "coverage" not in q:  # no trial: its record holds the error
        return (
            f"trial {summary['trial_id']:>4}  {summary['stimulus_id']:<20.20} onset "
            f"{summary['onset']:.3f}  [FAILED] {summary.get('error') or 'no trial was cut'}"
        )
    cov = " ".join(f"{k} {100 * v:3.0f}%" for k, v in q["coverage"].items())
    state = "complete" if q["complete"] else "INCOMPLETE"
    extra = f"  ({'; '.join(q['notes'])})" if q["notes"] else ""
    return (
        f"trial {summary['trial_id']:>4}  {summary['stimulus_id']:<20.20} onset {summary['onset']:.3f}"
        f"  coverage {cov}  gaze valid {100 * q['gaze_valid']:3.0f}%  blinks {q['blinks']}"
        f"  gaps {sum(q['gaps'].values())}  [{state}]{extra}"
    )


def run(args: argparse.Namespace) -> int:
    from acquisition.aligner import RatingEvent, TrialEvent
    from emoeye.live import open_live

    config = load_acq_config(args.config)
    warm_trial_path()
    live = open_live(config, args.wait)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if not args.json:
        print("Bound roles:")
        print(live.plan.explain(config.trial.required_roles))
        print("Waiting for onsets... (Ctrl-C to stop)")
    if args.seconds:
        threading.Timer(args.seconds, stop.set).start()

    def on_event(event) -> None:
        if isinstance(event, TrialEvent) and event.error is not None:  # the cut failed
            s = event.error.summary()
            line = f"trial {s['trial_id']:>4}  {s['stimulus_id']:<20.20} ERROR {s['error']}"
            print(json.dumps({"event": "trial_error", **s}) if args.json else line, flush=True)
        elif isinstance(event, TrialEvent):
            s = event.trial.summary()
            print(json.dumps({"event": "trial", **s}) if args.json else format_trial(s), flush=True)
        elif isinstance(event, RatingEvent):
            r = event.ratings
            if args.json:
                print(
                    json.dumps(
                        {
                            "event": "rating",
                            "trial_id": event.trial_id,
                            "arousal": r.arousal,
                            "valence": r.valence,
                        }
                    ),
                    flush=True,
                )
            else:
                print(
                    f"  rating for trial {event.trial_id}: arousal {r.arousal:g}, valence {r.valence:g}",
                    flush=True,
                )

    started = time.monotonic()
    try:
        live.run(on_event, stop)
    except KeyboardInterrupt:
        for event in live.core.flush():
            on_event(event)
    finally:
        live.stop()
    stats = live.core.aligner.stats.to_dict()
    health = {h.name: h.to_dict() for h in live.health.values()}
    if args.json:
        print(
            json.dumps(
                {
                    "event": "summary",
                    "seconds": round(time.monotonic() - started, 1),
                    "aligner": stats,
                    "streams": health,
                }
            )
        )
    else:
        print(
            f"stopped: {stats['trials_cut']} trial(s) cut ({stats['incomplete']} incomplete, {stats['no_data']} without usable data), {stats['trials_failed']} failed cut(s), {stats['duplicates']} duplicate onset(s), {stats['ignored']} ignored marker(s)"
        )
    return 0
