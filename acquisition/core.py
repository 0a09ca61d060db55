"""The acquisition core: one ring buffer per bound stream, the role readers over them and the
trial aligner. Live inlets and offline sources both feed it through :meth:`Acquisition.write`."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np

from acquisition.aligner import RatingEvent, TrialAligner, TrialEvent
from acquisition.config import AcquisitionConfig
from acquisition.lsl.binding import BindingPlan, BoundRole, Candidate
from acquisition.ringbuffer import RingBuffer
from acquisition.stimulus_catalogue import StimulusCatalogue
from acquisition.streams import Chunk, StreamSpec
from acquisition.trials.continuous import ContinuousCutter

Event = TrialEvent | RatingEvent


class MissingRoleError(RuntimeError):
    """A required role has no stream; the message names it and what is visible.

    ``str(exc)`` is the full binding report (every role, why each stream was chosen);
    :attr:`summary` says what is missing and what is there in one line, for commands that
    print one clear error line (``emoeye replay``, ``emoeye dataset build``).

    Parameters
    ----------
    missing
        The roles without a stream (``"markers"`` included when there is no marker stream).
    report
        The binding report (:meth:`acquisition.lsl.binding.BindingPlan.explain`).
    visible
        Every stream that was there to bind.
    """

    def __init__(
        self, missing: list[str], report: str = "", visible: list[StreamSpec] | None = None
    ) -> None:
        super().__init__(report or f"missing role(s): {', '.join(missing)}")
        self.missing = list(missing)
        self.visible = list(visible or [])

    @property
    def summary(self) -> str:
        """``missing role(s): markers; streams present: 'X' type='Gaze' ...`` in one line."""
        present = "; ".join(s.describe() for s in self.visible)
        there = f"streams present: {present}" if present else "no streams present"
        return f"missing role(s): {', '.join(self.missing)}; {there}"


class Acquisition:
    """Buffers, role readers and the aligner for one session.

    Parameters
    ----------
    plan
        The role binding (see :func:`acquisition.lsl.binding.bind_roles`).
    config
        Trial spec, marker formats, buffer length, participant.
    catalogue
        Known stimuli (unknown ids are cut, noted and counted).
    strict
        Raise :class:`MissingRoleError` when a required role is unbound (live use); offline
        use may pass False to cut what is there.
    require_markers
        Count the marker stream as required (with ``strict``). Continuous mode without markers
        passes False.

    Attributes
    ----------
    continuous
        The :class:`~acquisition.trials.continuous.ContinuousCutter` once
        :meth:`enable_continuous` was called (None: trial mode only).
    """

    def __init__(
        self,
        plan: BindingPlan,
        config: AcquisitionConfig | None = None,
        catalogue: StimulusCatalogue | None = None,
        strict: bool = True,
        require_markers: bool = True,
    ) -> None:
        self.config = config or AcquisitionConfig()
        self.plan = plan
        spec = self.config.trial
        # Markers are required too (no onsets, no trials), so the report must say so rather
        # than call the role optional.
        markers = ("markers",) if require_markers else ()
        required = tuple(dict.fromkeys((*spec.required_roles, *markers)))
        missing = plan.missing(required)
        if missing and strict:
            raise MissingRoleError(missing, plan.explain(required), plan.visible)
        self.streams: dict[str, StreamSpec] = {}
        self.buffers: dict[str, RingBuffer] = {}
        self.roles: dict[str, BoundRole] = {}
        self.marker_key: str | None = None
        self._marker_seq = 0
        self._bind_lock = threading.Lock()  # a rebind (GUI thread) vs the poll thread
        for role, cand in plan.roles.items():
            self._attach(role, cand)
        self.catalogue = catalogue or StimulusCatalogue(self.config.stimulus_folder)
        self.aligner = TrialAligner(
            spec,
            self.roles,
            self.watermark,
            parser=self.config.markers,
            stimuli=self.catalogue,
            participant=self.config.participant,
            id_prefix=f"{self.config.participant}-" if self.config.participant else "",
        )
        self.data_arrived = threading.Event()
        """Set by writers after each write, so a poll loop can wake on data instead of a timer."""
        self.continuous: ContinuousCutter | None = None

    def enable_continuous(self, step: float, max_backlog: int | None = None) -> ContinuousCutter:
        """Also cut the last window every ``step`` seconds (continuous mode), beside the trials.

        Raises :class:`~acquisition.trials.continuous.StepTooSmallError` (one line) for a step
        below the grid period. ``max_backlog``: see
        :class:`~acquisition.trials.continuous.ContinuousCutter` (live: a few; offline: None).
        """
        self.continuous = ContinuousCutter(
            self.config.trial,
            self.roles,
            self.watermark,
            step,
            participant=self.config.participant,
            id_prefix=self.aligner.id_prefix,
            max_backlog=max_backlog,
        )
        self.aligner.onset_listeners.append(self.continuous.note_onset)
        return self.continuous

    def _attach(self, role: str, cand: Candidate) -> None:
        """Point ``role`` at ``cand``'s stream, giving the stream a buffer if it has none."""
        key = cand.spec.key
        if key not in self.buffers:
            self.streams[key] = cand.spec
            self.buffers[key] = RingBuffer.for_stream(
                cand.spec.nominal_srate,
                cand.spec.channel_count,
                self.config.buffer_seconds,
                dtype=object if cand.spec.is_string else np.float64,
                irregular_rate=100.0 if role == "markers" else 1000.0,
            )
        if role == "markers":
            if key != self.marker_key:
                self.marker_key = key
                self._marker_seq = self.buffers[key].count  # only its markers from now on
        else:
            self.roles[role] = BoundRole(role, cand.spec, cand.reading, self.buffers[key])

    def bind(self, role: str, cand: Candidate) -> list[str]:
        """Bind ``role`` to another stream while running (the experimenter's choice).

        The role reads the new stream's buffer from now on (a new buffer when the stream had
        none: trials still open get what arrives, their earlier part marked missing).

        Returns
        -------
        list of str
            Keys of streams that no role reads any more (their input can be stopped).
        """
        with self._bind_lock:
            self.plan.roles[role] = cand
            self._attach(role, cand)
        used = {c.spec.key for c in self.plan.roles.values()}
        return [k for k in self.streams if k not in used]

    def watermark(self, role: str) -> float:
        """Newest time the role's data is known complete up to."""
        reader = self.roles.get(role)
        return reader.buffer.watermark if reader is not None else np.inf

    def write(self, chunk: Chunk) -> None:
        """Store a chunk of a bound stream (chunks of unbound streams are ignored)."""
        buffer = self.buffers.get(chunk.stream.key)
        if buffer is None or len(chunk) == 0:
            return
        buffer.write(chunk.timestamps, chunk.values)
        buffer.watermark = max(buffer.watermark, float(chunk.timestamps[-1]))
        self.data_arrived.set()

    def poll(self, now: float) -> list[Event]:
        """Read new markers and cut every trial that is ready at ``now``."""
        ts = values = None
        with self._bind_lock:
            if self.marker_key is not None:
                buffer = self.buffers[self.marker_key]
                ts, values, seq = buffer.read_since(self._marker_seq)
                lost = seq - self._marker_seq - len(ts)
                if lost > 0:
                    self.aligner.stats.count_drop("markers_overwritten", lost)
                self._marker_seq = seq
        if ts is not None and len(ts):
            self.aligner.add_markers(ts, values)
        events = self.aligner.poll(now)
        if self.continuous is not None:
            events += self.continuous.poll(now)
        return events

    def flush(self) -> list[Event]:
        """Cut every pending trial now (end of data or shutdown), and in continuous mode the
        windows up to the end of the data."""
        events = self.poll(-np.inf)
        events += self.aligner.flush()
        if self.continuous is not None:
            events += self.continuous.flush()
        return events

    def run_offline(self, source, block_seconds: float = 0.5) -> Iterator[Event]:
        """Feed an offline source (simulation, XDF) block by block in data time.

        Every stream's watermark advances to each block's end, so trials are cut exactly as
        live, just without waiting for the wall clock.
        """
        for block in source.iter_blocks(block_seconds):
            for chunk in block.chunks:
                self.write(chunk)
            for buffer in self.buffers.values():
                buffer.watermark = max(buffer.watermark, block.t_end)
            yield from self.poll(block.t_end)
        yield from self.flush()
