"""``emoeye demo``: the whole pipeline on simulated devices — the README's first command."""

from __future__ import annotations

import argparse
import subprocess
import sys
import uuid

from emoeye.errors import CliError


def register(sub: argparse._SubParsersAction) -> None:
    from acquisition.lsl.presets import DEVICE_SETS

    p = sub.add_parser(
        "demo",
        help="simulated devices -> trials -> bundled model -> live dashboard (or terminal view)",
        description="Start simulated devices in a separate process (real LSL outlets in a private "
        "LSL session), then run a live session on them with the bundled model: the dashboard "
        "when a display is available, else the terminal view.",
    )
    p.add_argument(
        "--seconds", type=float, default=120.0, help="stop after this long (0: until Ctrl-C)"
    )
    p.add_argument("--device-set", choices=sorted(DEVICE_SETS), default="gazepoint")
    from emoeye.commands.run import add_view_args

    add_view_args(p)
    p.add_argument("--seed", type=int, default=0, help="simulator seed")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from acquisition.lsl.config import write_lsl_config
    from emoeye.cli import build_parser

    written = getattr(args, "lsl_config_written", None)
    if written is not None and args.lsl_session == "default":
        # A private session, so other EmoEye or LSL programs on this computer don't mix in.
        write_lsl_config(written, f"emoeye-demo-{uuid.uuid4().hex[:12]}", args.lsl_scope, "demo")
    simulator = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "emoeye",
            "simulate",
            "--device-set",
            args.device_set,
            "--loop",
            "--wait-consumers",  # the first onset waits for `run` to listen
            "60",
            "--seed",
            str(args.seed),
        ],
        stdout=subprocess.DEVNULL,
    )
    print(f"demo: simulated {args.device_set} devices started (pid {simulator.pid})", flush=True)
    try:
        argv = ["run", "--wait", "30"]
        if args.headless:
            argv.append("--headless")
        if args.gui:
            argv.append("--gui")
        if args.seconds:
            argv += ["--seconds", str(args.seconds)]
        run_args = build_parser().parse_args(argv)
        if simulator.poll() is not None:
            raise CliError("the simulator exited at once; run `emoeye simulate` to see why")
        return int(run_args.func(run_args) or 0)
    finally:
        simulator.terminate()
        try:
            simulator.wait(timeout=10)
        except subprocess.TimeoutExpired:
            simulator.kill()
