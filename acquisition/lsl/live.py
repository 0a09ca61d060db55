"""Live LSL input: discovering streams, one inlet thread per stream, health and clock checks.

Each thread's Python work per pull is one ``pull_chunk`` into a preallocated numpy array and one
ring-buffer write (DESIGN: keep the GIL free for the other threads).
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import threading
import time
from collections import deque
from collections.abc import Callable

import numpy as np
import pylsl

from acquisition.aligner import TrialEvent
from acquisition.config import AcquisitionConfig
from acquisition.core import Acquisition, Event
from acquisition.lsl.binding import BindingPlan, Candidate, bind_roles
from acquisition.lsl.clockguard import ClockGuard
from acquisition.lsl.config import resolve_seconds
from acquisition.lsl.health import StreamHealth, StreamState
from acquisition.lsl.plausibility import PlausibilityWatch
from acquisition.lsl.presets import ROLES
from acquisition.streams import Chunk, StreamSpec

log = logging.getLogger(__name__)

_NUMPY_FORMATS = {
    "float32": np.float32,
    "double64": np.float64,
    "int8": np.int8,
    "int16": np.int16,
    "int32": np.int32,
    "int64": np.int64,
}
STALL_AFTER_S = 1.0
LOST_AFTER_S = 5.0
IRREGULAR_LATENCY_S = 0.05  # irregular streams: data stamped this long ago has surely arrived
IRREGULAR_HOLD_MAX_S = 2.0  # ... unless it comes in bursts: then up to this much later
PULL_TIMEOUT_S = 0.01
"""Longest wait of one ``pull_chunk`` for irregular streams (their watermark moves once a loop)
and, with pylsl older than 1.18, for all: liblsl then returns only when the chunk is full or this
runs out, so it bounds the delay a sample sees in the inlet thread (0.05 s cost the end-to-end
latency 25 ms on average, bench/e2e.py)."""
WAKE_TIMEOUT_S = 0.05
"""Longest wait of one ``pull_chunk`` where pylsl can return on the first sample (``min_samples``,
pylsl >= 1.18): data is taken the moment it arrives, so this only bounds how soon a stop or a
stall is noticed."""


def pull_chunk_wait(irregular: bool) -> dict[str, float | int]:
    """Keyword arguments for ``pull_chunk`` that return as soon as data is there.

    pylsl with ``min_samples`` waits for one sample, then drains what else is there; older
    pylsl waits until the chunk is full or :data:`PULL_TIMEOUT_S` runs out. Irregular streams
    keep the short timeout either way: their watermark advances by the clock, once a loop.
    """
    timeout = PULL_TIMEOUT_S if irregular else WAKE_TIMEOUT_S
    if "min_samples" in inspect.signature(pylsl.StreamInlet.pull_chunk).parameters:
        return {"timeout": timeout, "min_samples": 1}
    return {"timeout": PULL_TIMEOUT_S}


RESOLVE_S = resolve_seconds()
"""Seconds one look for streams listens for answers. liblsl answers a resolve in waves spaced by
its minimum round-trip settings: with the defaults a 0.5-s resolve on loopback returned 1-2 of 6
visible streams, every time, so late devices took 7-40 s to be bound. The machine-scope config
emoeye writes spaces the waves 0.05 s apart (0.3 s suffices); any other config gets 1 s."""
LATE_BIND_EVERY_S = 0.05
"""Pause between two looks for a stream for a role still unbound (``bind_late``)..."""
LATE_BIND_FAST_S = 60.0
"""... for this long after start (devices starting); then one look every second or so."""
MARKERS_FIRST_S = 2.0
"""Start-up waits up to this long for the marker inlet to connect before opening the others."""


def spec_from_info(info: pylsl.StreamInfo) -> StreamSpec:
    """A :class:`StreamSpec` from a *full* stream info (``inlet.info()``, with its desc)."""
    labels = []
    desc = info.desc()
    channel = desc.child("channels").child("channel")
    while not channel.empty():
        labels.append(channel.child_value("label"))
        channel = channel.next_sibling()
    if len(labels) != info.channel_count() or not all(labels):
        labels = []
    return StreamSpec(
        name=info.name(),
        type=info.type(),
        channel_count=info.channel_count(),
        nominal_srate=info.nominal_srate(),
        channel_format=_format_name(info.channel_format()),
        source_id=info.source_id(),
        channel_labels=tuple(labels),
        uid=info.uid(),
        hostname=info.hostname(),
        manufacturer=desc.child_value("manufacturer"),
    )


def _format_name(fmt: int) -> str:
    names = {
        pylsl.cf_float32: "float32",
        pylsl.cf_double64: "double64",
        pylsl.cf_string: "string",
        pylsl.cf_int32: "int32",
        pylsl.cf_int16: "int16",
        pylsl.cf_int8: "int8",
        pylsl.cf_int64: "int64",
    }
    return names.get(fmt, "float32")


def discover(
    timeout: float = 2.0, source_ids: list[str] | None = None
) -> list[tuple[StreamSpec, pylsl.StreamInfo]]:
    """Visible streams with their full metadata (channel labels need the full info).

    With ``source_ids``, only those streams (resolved by source id).
    """
    if source_ids is None:
        infos = pylsl.resolve_streams(wait_time=timeout)
    else:
        infos = [
            info
            for sid in source_ids
            for info in pylsl.resolve_byprop("source_id", sid, minimum=1, timeout=timeout)
        ]
    found = []
    for info in infos:
        try:
            inlet = pylsl.StreamInlet(info, recover=False)
            full = inlet.info(timeout=timeout)
            del inlet
        except Exception as exc:  # a stream that vanished between resolve and open
            log.warning("could not read metadata of %r: %s", info.name(), exc)
            full = info
        found.append((spec_from_info(full), info))
    return found


def discover_infos(infos: list[pylsl.StreamInfo]) -> list[tuple[StreamSpec, pylsl.StreamInfo]]:
    """Full metadata of already resolved streams (those that vanish meanwhile are left out)."""
    out = []
    for info in infos:
        try:
            inlet = pylsl.StreamInlet(info, recover=False)
            full = inlet.info(timeout=2.0)
            del inlet
        except Exception as exc:
            log.warning("could not read metadata of %r: %s", info.name(), exc)
            continue
        out.append((spec_from_info(full), info))
    return out


def same_layout(a: StreamSpec, b: StreamSpec) -> bool:
    """True when ``b``'s samples can continue ``a``'s buffer (same channels, format, rate kind)."""
    return (
        a.channel_count == b.channel_count
        and a.channel_format == b.channel_format
        and a.irregular == b.irregular
        and tuple(x.lower() for x in a.channel_labels) == tuple(x.lower() for x in b.channel_labels)
    )


def _health_for(spec: StreamSpec, roles: list[str]) -> StreamHealth:
    """A fresh health record for a stream the session pulls."""
    health = StreamHealth(spec.key, spec.name, roles, spec.nominal_srate)
    health.source_id = spec.source_id
    return health


class RebindError(ValueError):
    """A role cannot be bound to the stream asked for (the message says why)."""


class InletThread(threading.Thread):
    """Pulls one stream into the acquisition core, keeping its health up to date."""

    def __init__(
        self,
        info: pylsl.StreamInfo,
        spec: StreamSpec,
        acquisition: Acquisition,
        health: StreamHealth,
        stop: threading.Event,
        max_chunk: int = 4096,
        write_spec: StreamSpec | None = None,
        lost_after: float = LOST_AFTER_S,
    ) -> None:
        super().__init__(name=f"lsl-{spec.name}", daemon=True)
        self.info, self.spec, self.acq, self.health, self._halt = (
            info,
            spec,
            acquisition,
            health,
            stop,
        )
        self.max_chunk = max_chunk
        self.write_spec = write_spec or spec
        """The spec chunks are written under: the stream first bound to the role, so a device
        that restarted as a new stream continues the same buffer."""
        self.lost_after = lost_after
        self.guard = ClockGuard(spec.nominal_srate, pylsl.local_clock)
        self._retired = threading.Event()

    def retire(self) -> None:
        """Stop this thread only (its stream was replaced by a restarted device's)."""
        self._retired.set()

    def _stopping(self) -> bool:
        return self._halt.is_set() or self._retired.is_set()

    def _open(self) -> pylsl.StreamInlet:
        # Clock sync only. liblsl's dejitter smears a dropout or a clock jump over the samples
        # that follow (measured, 60 Hz: 2.9 s wrong right after a 3 s dropout, still 0.7 s off
        # 1 s later; a -50 s device clock reset became a slow glide that ClockGuard cannot see),
        # which misplaces whole trials. Raw stamps keep gaps where they are; the grid resampling
        # absorbs ordinary jitter.
        flags = pylsl.proc_clocksync
        inlet = pylsl.StreamInlet(self.info, max_buflen=360, recover=True, processing_flags=flags)
        inlet.open_stream(timeout=10.0)
        return inlet

    def run(self) -> None:
        while not self._stopping():
            try:
                inlet = self._open()
            except Exception as exc:
                self._error(f"cannot open inlet: {exc}")
                self._halt.wait(1.0)
                continue
            try:
                self._pull_loop(inlet)
            except Exception as exc:  # never die silently: report, reopen, go on
                self._error(f"acquisition error: {exc!r}")
                self._halt.wait(0.5)
            finally:
                with contextlib.suppress(Exception):
                    inlet.close_stream()
                del inlet
        if not self._retired.is_set():  # a retired thread's health now belongs to its successor
            self.health.state = StreamState.STOPPED

    def _error(self, message: str) -> None:
        self.health.state = StreamState.ERROR
        self.health.errors += 1
        self.health.note(message)
        log.error("%s: %s", self.spec.name, message)

    def _pull_loop(self, inlet: pylsl.StreamInlet) -> None:
        spec, health = self.spec, self.health
        string = spec.is_string
        dest = (
            None
            if string
            else np.empty(
                (self.max_chunk, spec.channel_count),
                _NUMPY_FORMATS.get(spec.channel_format, np.float32),
            )
        )
        out_spec = self.write_spec
        buffer = self.acq.buffers.get(out_spec.key)
        last_offset_check = 0.0
        period = 0.0 if spec.irregular else 1.0 / spec.nominal_srate
        period_ahead = period + min(0.05 * period, 0.001)
        pull_wait = pull_chunk_wait(spec.irregular)
        late: deque[float] = deque(maxlen=32)
        health.state = StreamState.OK
        health.last_arrival = pylsl.local_clock()
        while not self._stopping():
            if string:
                values, ts = inlet.pull_chunk(max_samples=self.max_chunk, **pull_wait)
            else:
                _, ts = inlet.pull_chunk(max_samples=self.max_chunk, dest_obj=dest, **pull_wait)
            now = pylsl.local_clock()
            if ts:
                n = len(ts)
                stamps = self.guard.correct(np.asarray(ts, dtype=np.float64))
                vals = np.array(values, dtype=object).reshape(n, -1) if string else dest[:n]
                self.acq.write(Chunk(out_spec, stamps, vals))
                if buffer is not None and not spec.irregular:
                    # A regular stream's next sample is due one period after its newest one, so
                    # its data is complete up to there (plus a hair for clock-sync noise).
                    # Without this a window ending between two pushed chunks waited for the
                    # device's next chunk (50-ms blocks: regular e2e p50 64 ms, bench/e2e.py).
                    buffer.watermark = max(buffer.watermark, float(stamps[-1]) + period_ahead)
                if health.state is not StreamState.OK and not health.read_error:
                    gap = now - health.last_arrival
                    health.gaps += 1
                    health.note(f"resumed after {gap:.1f} s without data (gap counted)")
                    health.state = StreamState.OK
                health.samples += n
                health.chunks += 1
                health.last_arrival = now
                health.last_timestamp = float(stamps[-1])
                health.lag = now - float(stamps[-1])
                if spec.irregular:  # how late a burst's oldest sample arrives
                    late.append(now - float(stamps[0]))
                if (
                    self.guard.jumps != health.clock_jumps
                    or self.guard.unix_epoch != health.unix_epoch
                ):
                    health.clock_jumps, health.unix_epoch = self.guard.jumps, self.guard.unix_epoch
                    health.note(self.guard.events[-1])
            else:
                silent = now - health.last_arrival
                expected = 0.0 if spec.irregular else max(STALL_AFTER_S, 20.0 / spec.nominal_srate)
                if (
                    not spec.irregular
                    and silent > self.lost_after
                    and health.state is not StreamState.LOST
                ):
                    health.state = StreamState.LOST
                    health.note(
                        f"no data for {silent:.0f} s: device lost? waiting for it to return"
                    )
                elif expected and silent > expected and health.state is StreamState.OK:
                    health.state = StreamState.STALLED
                    health.note(f"stalled: no data for {silent:.1f} s")
            if buffer is not None and spec.irregular and health.state is StreamState.OK:
                # A silent irregular stream may have nothing to say, or a burst on its way:
                # hold the watermark back by the lateness its bursts have shown recently.
                hold = max(IRREGULAR_LATENCY_S, max(late, default=0.0) + 0.05)
                buffer.watermark = max(buffer.watermark, now - min(hold, IRREGULAR_HOLD_MAX_S))
            health.update_rate(now)
            health.clock_offset = self.guard.offset
            if now - last_offset_check > 5.0:
                last_offset_check = now
                with contextlib.suppress(Exception):
                    health.clock_offset = self.guard.offset + inlet.time_correction(timeout=0.2)


class LiveAcquisition:
    """Live session input: resolves streams, binds roles, runs one inlet thread per stream.

    Parameters
    ----------
    config
        Acquisition configuration.
    resolve_timeout
        Seconds to look for streams.
    streams
        Already discovered streams (skips discovery; used by tests and the CLI).
    rebind
        Watch for devices that restart as a *new* stream (new uid and source id, same name and
        type): when a bound stream is lost, streams with its name and type are resolved again and
        bound by the same rules (:func:`~acquisition.lsl.binding.bind_roles`). A replacement with
        the same layout (channel count, format, labels, reading) continues the *same* ring
        buffer and health record, so trials span the restart; the gap is counted and the rebind
        noted once (``health.rebinds``). One with another layout is reported, not bound.
        (A device that comes back with the *same* source id needs none of this: liblsl's
        ``recover=True`` reconnects the inlet.)
    lost_after
        Seconds without data before a regular stream is reported lost.
    strict
        Refuse to start (:class:`~acquisition.core.MissingRoleError`) when a required role or the
        markers have no stream. ``emoeye run`` passes False with ``bind_late``: it opens what is
        there at once, so no onset is lost while a device is still starting.
    bind_late
        While a role (required or optional) has no stream, look for one every
        :data:`LATE_BIND_EVERY_S` and bind it the moment it appears: a new buffer and inlet;
        trials cut before have the role missing, trials still open get its data from then on.

    Attributes
    ----------
    rebinds
        One line per rebind done (also in the stream's health events).
    late_bindings
        One line per role bound after start (also in the stream's health events).
    stream_listeners
        Called with the ``pylsl.StreamInfo`` of every stream bound after start, *before* its
        inlet opens (the session's recorder adds it to the file so it holds what the trials see).
    """

    def __init__(
        self,
        config: AcquisitionConfig | None = None,
        resolve_timeout: float = 2.0,
        streams: list[tuple[StreamSpec, pylsl.StreamInfo]] | None = None,
        rebind: bool = True,
        lost_after: float = LOST_AFTER_S,
        strict: bool = True,
        bind_late: bool = False,
    ) -> None:
        self.config = config or AcquisitionConfig()
        visible = streams if streams is not None else discover(resolve_timeout)
        self.infos = {spec.key: info for spec, info in visible}
        self.plan: BindingPlan = bind_roles([s for s, _ in visible], self.config.rules)
        self.core = Acquisition(self.plan, self.config, strict=strict)
        roles_of: dict[str, list[str]] = {}
        for role, cand in self.plan.roles.items():
            roles_of.setdefault(cand.spec.key, []).append(role)
        self.health = {
            key: _health_for(spec, roles_of.get(key, [])) for key, spec in self.core.streams.items()
        }
        self.rebind = rebind
        self.lost_after = float(lost_after)
        self.rebinds: list[str] = []
        self.bind_late = bind_late
        self.late_bindings: list[str] = []
        self.stream_listeners: list[Callable[[pylsl.StreamInfo], object]] = []
        self._late_seen: set[str] = set()  # uids already looked at by the late binder
        self._current: dict[str, StreamSpec] = dict(self.core.streams)
        """Buffer key → the stream now feeding it (differs from the first after a rebind)."""
        self._inlets: dict[str, InletThread] = {}
        self._rejected: set[str] = set()  # uids of replacements already reported as unfit
        self._last_visible_check: dict[str, float] = {}
        self._halt = threading.Event()
        self._threads: list[threading.Thread] = []
        self._rebind_lock = threading.Lock()  # the experimenter's rebind vs the watchdog's
        self.plausibility = PlausibilityWatch()
        """Checks each role's first seconds; verdicts go to ``health[key].plausibility``."""

    def start(self) -> None:
        """Open every bound stream's inlet in its own thread, the markers' first (and the rebind
        watchdog, and with ``bind_late`` the binder of roles still without a stream)."""
        marker_key = self.core.marker_key
        if marker_key is not None:  # onsets are what must not be missed: connect them first
            self._start_inlet(marker_key, self.infos[marker_key], self.core.streams[marker_key])
            end = time.monotonic() + MARKERS_FIRST_S
            while (
                self.health[marker_key].state is StreamState.CONNECTING and time.monotonic() < end
            ):
                time.sleep(0.005)
        for key, spec in self.core.streams.items():
            if key != marker_key:
                self._start_inlet(key, self.infos[key], spec)
        self._late_seen = {info.uid() for info in self.infos.values()}
        if self.rebind:
            t = threading.Thread(target=self._watch, name="lsl-watchdog", daemon=True)
            t.start()
            self._threads.append(t)
        if self.bind_late and self.unbound():
            t = threading.Thread(target=self._bind_late_loop, name="lsl-late-binder", daemon=True)
            t.start()
            self._threads.append(t)

    def unbound(self) -> list[str]:
        """Roles (of gaze, gsr, hr, markers) with no stream yet."""
        return [r for r in ROLES if r not in self.plan.roles]

    # ------------------------------------------------------------------ late binding

    def _bind_late_loop(self) -> None:
        """Until every role has a stream: look for new streams, bind those that fill a gap.

        A stream that appears is seen within ~RESOLVE_S + 0.05 s during the first :data:`LATE_BIND_FAST_S`,
        then within ~1.5 s: an outlet keeps nothing for an inlet that connects later, so an
        onset sent before its inlet connects would be lost.
        """
        started = time.monotonic()
        period = LATE_BIND_EVERY_S
        while not self._halt.wait(period) and self.unbound():
            if time.monotonic() - started > LATE_BIND_FAST_S:
                period = 1.0
            try:
                self._bind_late_once(pylsl.resolve_streams(wait_time=RESOLVE_S))
            except Exception as exc:  # the binder must outlive any resolve error
                log.warning("late binding: %r", exc)

    def _bind_late_once(self, infos: list[pylsl.StreamInfo]) -> list[str]:
        """Bind each unbound role that one of the new streams in ``infos`` can play.

        Returns the lines reported (also in :attr:`late_bindings`).
        """
        fresh = [i for i in infos if i.uid() not in self._late_seen]
        if not fresh:
            return []
        candidates = discover_infos(fresh)  # those whose metadata cannot be read: next time
        self._late_seen.update(s.uid or s.key for s, _ in candidates)
        lines = []
        with self._rebind_lock:
            new = [(s, i) for s, i in candidates if s.key not in self.infos]
            plan = bind_roles([*self.plan.visible, *(s for s, _ in new)], self.config.rules)
            for spec, info in new:
                self.infos[spec.key] = info
                self.plan.visible.append(spec)
            for role, cands in plan.candidates.items():  # the streams dialog offers them too
                have = {(c.spec.key, c.reading.kind) for c in self.plan.candidates.get(role, [])}
                self.plan.candidates.setdefault(role, []).extend(
                    c for c in cands if (c.spec.key, c.reading.kind) not in have
                )
            new_keys = {s.key for s, _ in new}
            for role in sorted(self.unbound(), key=lambda r: r != "markers"):  # onsets first
                cand = plan.roles.get(role)
                if cand is None or cand.spec.key not in new_keys or self._halt.is_set():
                    continue
                lines.append(self._bind_new(role, cand))
        return lines

    def _bind_new(self, role: str, cand: Candidate) -> str:
        """Bind ``role`` to a stream that appeared after start (caller holds the lock)."""
        key = cand.spec.key
        info = self.infos[key]
        if key not in self._inlets:
            for listener in self.stream_listeners:
                try:
                    listener(info)
                except Exception as exc:  # a recorder problem must not cost the role
                    log.error("stream listener failed for %s: %r", cand.spec.name, exc)
        self.core.bind(role, cand)
        if key not in self._inlets:
            # A new dict, not an insert: the views iterate the health records unlocked.
            self.health = {**self.health, key: _health_for(cand.spec, [])}
            self._current[key] = cand.spec
            self._start_inlet(key, info, cand.spec)
        health = self.health[key]
        if role not in health.roles:
            health.roles.append(role)
        line = (
            f"{role} bound late to {cand.spec.describe()} [{cand.reading.kind}; {cand.why}]: "
            "trials cut before have it missing"
        )
        health.note(line)
        self.late_bindings.append(line)
        log.info("%s", line)  # start-up's normal course; the health events keep it
        return line

    def _start_inlet(self, key: str, info: pylsl.StreamInfo, spec: StreamSpec) -> InletThread:
        t = InletThread(
            info,
            spec,
            self.core,
            self.health[key],
            self._halt,
            write_spec=self.core.streams[key],
            lost_after=self.lost_after,
        )
        t.start()
        self._inlets[key] = t
        self._threads.append(t)
        return t

    # ------------------------------------------------------------------ rebinding

    def _watch(self) -> None:
        """Every half second: find replacements for lost streams; check silent irregular ones."""
        while not self._halt.wait(0.5):
            for key, health in list(self.health.items()):  # a rebind may change the dict
                try:
                    if key not in self._current:
                        continue
                    if health.state is StreamState.LOST:
                        with self._rebind_lock:
                            self._try_rebind(key)
                    elif self._current[key].irregular:
                        self._check_visible(key)
                except Exception as exc:  # the watchdog must outlive any resolve error
                    log.warning("stream watchdog (%s): %r", health.name, exc)

    def _check_visible(self, key: str) -> None:
        """An irregular stream may be silent for minutes: only its disappearance means lost."""
        health, spec = self.health[key], self._current[key]
        now = pylsl.local_clock()
        silent = now - health.last_arrival
        if health.state is not StreamState.OK or not silent > self.lost_after:
            return
        if now - self._last_visible_check.get(key, -np.inf) < 2.0:
            return
        self._last_visible_check[key] = now
        found = pylsl.resolve_byprop("source_id", spec.source_id, minimum=1, timeout=1.0)
        if not any(i.uid() == spec.uid or not spec.uid for i in found) and not self._halt.is_set():
            health.state = StreamState.LOST
            health.note(f"no longer visible on the network (silent {silent:.0f} s): device lost?")

    def _try_rebind(self, key: str) -> bool:
        """Bind the roles of lost stream ``key`` to a new stream with its name and type."""
        old = self._current[key]
        pred = f"name='{old.name}' and type='{old.type}'"
        infos = pylsl.resolve_bypred(pred, minimum=1, timeout=0.5)
        bound_uids = {s.uid for s in self._current.values()}
        fresh = [i for i in infos if i.uid() not in bound_uids and i.uid() not in self._rejected]
        if not fresh or self._halt.is_set():
            return False
        candidates = discover_infos(fresh)
        others = [s for k, s in self._current.items() if k != key]
        plan = bind_roles(others + [s for s, _ in candidates], self.config.rules)
        health = self.health[key]
        for spec, info in candidates:
            roles = [r for r, c in plan.roles.items() if c.spec.uid == spec.uid]
            first = self.core.streams[key]
            fits = set(health.roles) <= set(roles) and all(
                plan.roles[r].reading == self.plan.roles[r].reading for r in health.roles
            )
            if not (fits and same_layout(first, spec)):
                self._rejected.add(spec.uid)  # reported once, then left alone
                health.note(
                    f"a new stream {spec.describe()} has the lost stream's name and type but "
                    "its channel layout differs: not bound (restart the session to use it)"
                )
                continue
            old_thread = self._inlets[key]
            old_thread.retire()
            old_thread.join(timeout=5.0)
            self._current[key] = spec
            self.infos[key] = info
            health.rebinds += 1
            health.gaps += 1
            health.source_id = spec.source_id
            line = (
                f"device restarted as a new stream (source_id {spec.source_id!r}): "
                f"{', '.join(health.roles)} rebound, same buffer continues (gap counted)"
            )
            health.note(line)
            self.rebinds.append(f"{health.name}: {line}")
            log.warning("%s: %s", health.name, line)
            self._start_inlet(key, info, spec)
            return True
        return False

    # ------------------------------------------------------------------ experimenter's choice

    def rebind_role(self, role: str, stream_key: str) -> str:
        """Bind ``role`` to another stream visible at start, while the session runs.

        The role reads the chosen stream from now on: trials still open get its data from the
        switch on (their earlier part is marked missing). A stream no role reads any more stops
        being pulled and leaves the health table.

        Parameters
        ----------
        role
            ``gaze``, ``gsr``, ``hr`` or ``markers``.
        stream_key
            :attr:`StreamSpec.key` of a stream in ``plan.visible`` with a reading for the role.

        Returns
        -------
        str
            The line reported (also in the stream's health events and :attr:`rebinds`).

        Raises
        ------
        RebindError
            The stream is unknown, or nothing says how it plays the role.
        """
        with self._rebind_lock:
            cands = [c for c in self.plan.candidates.get(role, []) if c.spec.key == stream_key]
            if not cands:
                if stream_key not in self.infos:
                    raise RebindError(
                        f"no stream {stream_key!r} was visible at start "
                        "(restart the session to see new streams)"
                    )
                name = self.infos[stream_key].name()
                raise RebindError(
                    f"no preset says how {name!r} plays {role}; bind it with a rule in a "
                    "--config file (docs/configuration.md)"
                )
            cand = max(cands, key=lambda c: c.score)
            old = self.plan.roles.get(role)
            if old is not None and old.spec.key == stream_key:
                return f"{role} already reads {cand.spec.describe()}"
            unused = self.core.bind(role, cand)
            if stream_key not in self._inlets:  # not pulled yet (or no longer): start it
                self.health = {**self.health, stream_key: _health_for(cand.spec, [])}
                self._current[stream_key] = cand.spec
                self._start_inlet(stream_key, self.infos[stream_key], cand.spec)
            health = self.health[stream_key]
            if role not in health.roles:
                health.roles.append(role)
            if old is not None and old.spec.key in self.health:
                previous = self.health[old.spec.key]
                previous.roles = [r for r in previous.roles if r != role]
            for key in unused:  # nothing reads it: stop pulling it
                thread = self._inlets.pop(key, None)
                if thread is not None:
                    thread.retire()
                self.health = {k: h for k, h in self.health.items() if k != key}
                self._current.pop(key, None)
            was = old.spec.describe() if old is not None else "nothing"
            line = f"{role} rebound by the experimenter: {was} -> {cand.spec.describe()}"
            health.note(line)
            self.rebinds.append(line)
            log.warning("%s", line)
            return line

    # ------------------------------------------------------------------ running

    def wait_connected(self, timeout: float = 10.0) -> bool:
        """Wait until every stream has left the connecting state."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if all(h.state is not StreamState.CONNECTING for h in self.health.values()):
                return True
            time.sleep(0.02)
        return False

    def poll(self, wait: float = 0.0) -> list[Event]:
        """Cut ready trials now; with ``wait``, first wait up to that long for new data."""
        if wait:
            self.core.data_arrived.wait(wait)
            self.core.data_arrived.clear()
        self.plausibility.update(self.core.roles, self.health)  # once per role, when data is in
        return self._note_read_errors(self.core.poll(pylsl.local_clock()))

    def _note_read_errors(self, events: list[Event]) -> list[Event]:
        """A trial whose role could not be read puts that role's stream in state ``error`` (with
        the reason) until a trial is cut again: a binding that fails at run time shows in the
        health table, not only in the error records."""
        for event in events:
            if not isinstance(event, TrialEvent):
                continue
            if event.error is None:
                for health in self.health.values():
                    if health.read_error:
                        health.read_error = ""
                        health.state = StreamState.OK
                        health.note("roles read again")
                continue
            bound = self.core.roles.get(event.error.role or "")
            health = self.health.get(bound.spec.key) if bound is not None else None
            if health is None:
                continue
            health.errors += 1
            health.read_error = f"{event.error.role}: {event.error.reason}"
            health.state = StreamState.ERROR
            if not health.events or not health.events[-1].endswith(health.read_error):
                health.note(f"reading failed: {health.read_error}")
        return events

    def run(self, on_event: Callable[[Event], None], stop: threading.Event) -> None:
        """Poll until ``stop`` is set, handing each event to ``on_event``; flush at the end."""
        while not stop.is_set():
            for event in self.poll(wait=0.01):
                on_event(event)
        for event in self._note_read_errors(self.core.flush()):
            on_event(event)

    def stop(self) -> None:
        """Stop the inlet threads and the watchdog (inlets are destroyed in their threads)."""
        self._halt.set()
        for t in self._threads:
            t.join(timeout=5.0)
        self._threads.clear()

    def __enter__(self) -> LiveAcquisition:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
