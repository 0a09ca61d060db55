"""The dashboard window: panels laid out for a 1366×768 screen, controls, and the frame timer.

Pull model: a QTimer reads ring buffers, health records and the prediction store; nothing here
waits on LSL or the model. Recording starts and stops off the GUI thread.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
import traceback
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from acquisition.lsl.presets import ROLES
from acquisition.reporting import is_milestone
from gui.dialogs import NO_REBIND_TIP, StreamsDialog
from gui.panels.health import HealthTable
from gui.panels.modalities import EegPanel, FacePanel
from gui.panels.predictions import PlanePanel, TimelinePanel, ValuesPanel
from gui.panels.signals import SignalsPanel
from gui.panels.stimulus import StimulusPanel
from gui.qt import QtCore, QtGui, QtWidgets
from gui.session import DashboardSession, can_rebind, can_record, recording_target
from gui.style import BANNER_STYLE, REC_STYLE
from gui.timeline import TrialLog
from gui.timing import FrameClock

DEFAULT_WINDOW_S = 20.0
DEFAULT_FPS = 50.0
SLOW_PERIOD_S = 0.2
"""Health table, status line and banner refresh at most this often."""
log = logging.getLogger(__name__)

NO_RECORD_TIP = (
    "This session cannot record. Record with LabRecorder, or start the session with "
    "`emoeye run --record FILE.xdf`."
)


class DashboardWindow(QtWidgets.QMainWindow):
    """The experimenter's dashboard for one session.

    Emits ``closed`` when its window is closed.

    Parameters
    ----------
    session
        Anything with ``live``, ``store`` and ``catalogue`` (see :mod:`gui.session`).
    window_seconds
        Seconds of signal shown (10, 20 or 30 can be picked in the window).
    fps
        Frame timer rate.
    """

    closed = QtCore.Signal()

    def __init__(
        self,
        session: DashboardSession,
        window_seconds: float = DEFAULT_WINDOW_S,
        fps: float = DEFAULT_FPS,
        parent: QtWidgets.QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.session = session
        self.live = session.live
        self.core = self.live.core
        self.catalogue = getattr(session, "catalogue", None) or self.core.catalogue
        spec = self.core.config.trial
        self.trial_duration = float(spec.duration)
        self.required = (*spec.required_roles, "markers")
        self.window_seconds = float(window_seconds)
        self.log = TrialLog()
        self.origin = math.nan
        self.t_end = -math.inf
        self.paused = False
        self.frames = 0
        self.points_drawn = 0
        self.clock = FrameClock()
        self._last_frame = math.nan
        self._last_slow = -math.inf
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dashboard-rec")
        self._rec_future: Future | None = None
        self._rec_started = math.nan
        self.message = ""
        self.slot_errors = 0
        """Exceptions caught in the window's timer slots (and, under ``run_dashboard``, in any
        slot): each logged, counted and shown in the status bar; the session goes on."""

        self.setWindowTitle("EmoEye Live — experimenter dashboard")
        font = self.font()
        font.setPointSize(9)
        self.setFont(font)
        self._build()
        strip = self.continuous is not None or self.roles_strip is not None
        self.resize(1340, 740 if strip else 680)
        self.timer = QtCore.QTimer(self)
        self.timer.setTimerType(QtCore.Qt.PreciseTimer)
        self.timer.timeout.connect(self.tick)
        self.timer.start(max(int(1000.0 / fps), 1))
        self._slow_update()

    @property
    def continuous_mode(self) -> bool:
        """True when the session predicts continuous windows (its acquisition core cuts them, or
        its configuration asks for them)."""
        if getattr(self.core, "continuous", None) is not None:
            return True
        config = getattr(self.session, "session", None)
        return getattr(config, "continuous_step", None) is not None

    # ----------------------------------------------------------------- layout
    def _build(self) -> None:
        central = QtWidgets.QWidget()
        outer = QtWidgets.QVBoxLayout(central)
        outer.setContentsMargins(4, 4, 4, 0)
        outer.setSpacing(3)

        self.banner = QtWidgets.QLabel("")
        self.banner.setStyleSheet(BANNER_STYLE)
        self.banner.setWordWrap(True)
        self.banner.hide()
        outer.addWidget(self.banner)

        bar = QtWidgets.QHBoxLayout()
        self.pause_button = QtWidgets.QPushButton("Pause display")
        self.pause_button.setIcon(self.style().standardIcon(QtWidgets.QStyle.SP_MediaPause))
        self.pause_button.setCheckable(True)
        self.pause_button.setShortcut(QtGui.QKeySequence("Space"))
        self.pause_button.setToolTip(
            "Freeze the plots to look at them (Space). Acquisition, trials, predictions and "
            "recording go on."
        )
        self.pause_button.toggled.connect(self.set_paused)
        bar.addWidget(self.pause_button)
        bar.addWidget(QtWidgets.QLabel("Window:"))
        self.window_combo = QtWidgets.QComboBox()
        max_s = float(getattr(self.core.config, "buffer_seconds", 30.0))
        for s in (5, 10, 20, 30, 60):
            if s <= max_s:
                self.window_combo.addItem(f"{s} s", float(s))
        idx = self.window_combo.findData(self.window_seconds)
        if idx < 0:
            self.window_combo.addItem(f"{self.window_seconds:g} s", self.window_seconds)
            idx = self.window_combo.count() - 1
        self.window_combo.setCurrentIndex(idx)
        self.window_combo.setToolTip("Seconds of signal shown")
        self.window_combo.currentIndexChanged.connect(
            lambda _: self.set_window(self.window_combo.currentData())
        )
        bar.addWidget(self.window_combo)
        self.streams_button = QtWidgets.QPushButton("Streams…")
        self.streams_button.setToolTip(
            "Visible streams and how each role is bound"
            + ("; choose another stream per role" if can_rebind(self.session) else "")
            + ("" if can_rebind(self.session) else ".\n" + NO_REBIND_TIP)
        )
        self.streams_button.clicked.connect(self.show_streams)
        bar.addWidget(self.streams_button)
        self.record_button = QtWidgets.QPushButton("● Record XDF…")
        self.record_button.setCheckable(True)
        if can_record(self.session):
            self.record_button.setToolTip("Record every stream of the session to an XDF file")
        else:
            self.record_button.setEnabled(False)
            self.record_button.setToolTip(NO_RECORD_TIP)
        self.record_button.clicked.connect(self.toggle_recording)
        bar.addWidget(self.record_button)
        self.rec_label = QtWidgets.QLabel("")
        self.rec_label.setStyleSheet(REC_STYLE)
        bar.addWidget(self.rec_label)
        bar.addStretch(1)
        self.summary = QtWidgets.QLabel("")
        bar.addWidget(self.summary)
        outer.addLayout(bar)

        roles = self.core.roles
        self.signals = SignalsPanel(roles, self.trial_duration)
        self.stimulus = StimulusPanel(self.catalogue, self.trial_duration)
        self.timeline = TimelinePanel()
        self.plane = PlanePanel()
        self.values = ValuesPanel()
        self.continuous = None
        if self.continuous_mode:
            from gui.panels.continuous import ContinuousPanel

            self.continuous = ContinuousPanel(self.trial_duration)
        self.health = HealthTable(extra=[r for r in ("eeg", "face") if r in roles])

        def column(upper: QtWidgets.QWidget, lower: QtWidgets.QWidget, sizes: list[int]):
            split = QtWidgets.QSplitter(QtCore.Qt.Vertical)
            split.addWidget(upper)
            split.addWidget(lower)
            split.setSizes(sizes)
            return split

        top = QtWidgets.QSplitter(QtCore.Qt.Horizontal)
        top.addWidget(self.signals)
        top.addWidget(column(self.stimulus, self.timeline, [340, 160]))
        # With a strip under the row (continuous mode, the EEG and face panels) the row is short:
        # the plane keeps most of its column, the values chart needs ~110 px.
        short = self.continuous is not None or "eeg" in roles or "face" in roles
        top.addWidget(column(self.plane, self.values, [345, 155] if short else [330, 170]))
        top.setSizes([530, 340, 470])
        split = QtWidgets.QSplitter(QtCore.Qt.Vertical)
        split.addWidget(top)
        # The optional roles' panels, only when bound (docs/modalities.md). A fourth column
        # squeezed every panel below its contents' width at 1366 px, so they get a strip of
        # their own under the others, as continuous mode's time courses do.
        self.eeg = EegPanel() if "eeg" in roles else None
        self.face = FacePanel() if "face" in roles else None
        extra = [w for w in (self.eeg, self.face) if w is not None]
        self.roles_strip: QtWidgets.QWidget | None = None
        if extra:
            strip = QtWidgets.QSplitter(QtCore.Qt.Horizontal)
            for w in extra:
                strip.addWidget(w)
            strip.setSizes([720, 620] if len(extra) == 2 else [1340])
            strip.setChildrenCollapsible(False)
            self.roles_strip = strip
        strips = [w for w in (self.continuous, self.roles_strip) if w is not None]
        sizes = [500]
        self.strip_tabs: QtWidgets.QTabWidget | None = None
        if len(strips) == 2:  # both want the strip: one tab each rather than a third of the height
            tabs = QtWidgets.QTabWidget()
            tabs.setDocumentMode(True)
            tabs.addTab(self.continuous, "Continuous predictions")
            tabs.addTab(self.roles_strip, " and ".join(w.ROLE_TITLE for w in extra))
            self.strip_tabs = tabs
            strips = [tabs]
        if strips:  # time courses want the full width: a strip of their own
            split.addWidget(strips[0])
            # The EEG and face plots read well at 150 px; the top row keeps the rest.
            sizes = [330, 190] if self.continuous is not None else [370, 150]
        split.addWidget(self.health)
        self.health.setMinimumHeight(self.health.preferred_height())
        split.setSizes([*sizes, self.health.preferred_height()])
        split.setStretchFactor(0, 1)
        split.setStretchFactor(split.count() - 1, 0)  # the health table keeps its height
        split.setChildrenCollapsible(False)
        outer.addWidget(split, 1)
        self.setCentralWidget(central)
        self.status = self.statusBar()

    # ---------------------------------------------------------------- controls
    def set_paused(self, paused: bool) -> None:
        """Freeze (or resume) the plots; acquisition and the health table go on."""
        self.paused = bool(paused)
        self.pause_button.setChecked(self.paused)
        self.pause_button.setText("Resume display" if self.paused else "Pause display")
        icon = QtWidgets.QStyle.SP_MediaPlay if self.paused else QtWidgets.QStyle.SP_MediaPause
        self.pause_button.setIcon(self.style().standardIcon(icon))

    def set_window(self, seconds: float) -> None:
        """Seconds of signal shown."""
        self.window_seconds = float(seconds)

    def show_streams(self) -> StreamsDialog:
        """Open the streams dialog (non-modal) and return it."""
        dialog = StreamsDialog(self.session, self)
        dialog.setModal(False)
        dialog.show()
        return dialog

    def ask_record_path(self) -> str:
        """Ask where to record (tests replace this)."""
        default = str(Path.cwd() / time.strftime("emoeye-%Y%m%d-%H%M%S.xdf"))
        path, _ = QtWidgets.QFileDialog.getSaveFileName(
            self, "Record the session to XDF", default, "XDF files (*.xdf)"
        )
        return path

    def toggle_recording(self) -> None:
        """Start or stop recording (in a background thread; the button waits for it)."""
        if not can_record(self.session) or self._rec_future is not None:
            self._sync_record_button()
            return
        if recording_target(self.session):
            self._rec_future = self._executor.submit(self.session.stop_recording)
            self.rec_label.setText("stopping…")
        else:
            path = self.ask_record_path()
            if not path:
                self._sync_record_button()
                return
            self._rec_future = self._executor.submit(self.session.start_recording, path)
            self._rec_started = time.monotonic()
            self.rec_label.setText("starting…")
        self.record_button.setEnabled(False)

    def _sync_record_button(self) -> None:
        target = recording_target(self.session)
        if self._rec_future is not None:
            if not self._rec_future.done():
                return
            exc = self._rec_future.exception()
            self._rec_future = None
            self.record_button.setEnabled(True)
            if exc is not None:
                self.message = f"recording failed: {exc}"
                self.rec_label.setText(f"recording failed: {exc}")
                self.record_button.setChecked(bool(target))
                return
        self.record_button.setChecked(bool(target))
        if target:
            if math.isnan(self._rec_started):
                self._rec_started = time.monotonic()
            el = int(time.monotonic() - self._rec_started)
            self.rec_label.setText(f"● REC {el // 60:02d}:{el % 60:02d} → {Path(target).name}")
            self.record_button.setText("■ Stop recording")
        else:
            self._rec_started = math.nan
            self.record_button.setText("● Record XDF…")
            if not self.rec_label.text().startswith("recording failed"):
                self.rec_label.setText("")

    # ------------------------------------------------------------------ frames
    def data_time(self) -> float:
        """Newest sample time over the signal roles (the right edge of the plots)."""
        # A copy: a role bound late (another thread) may be added while this reads.
        ends = [r.buffer.last_timestamp for r in list(self.core.roles.values())]
        finite = [t for t in ends if math.isfinite(t)]
        return max(finite) if finite else -math.inf

    def slot_failed(self, where: str, exc: BaseException) -> None:
        """Report an exception a Qt slot raised, and go on.

        PyQt5 answers an exception escaping a slot with ``qFatal``, which aborts the process and
        with it acquisition, inference and the recording. The display is not worth that: the
        exception is counted, logged with its traceback (the 1st, 10th, 100th... time) and shown
        in the status bar.
        """
        self.slot_errors += 1
        text = f"display error #{self.slot_errors} in {where}: {type(exc).__name__}: {exc}"
        self.message = text + " (logged; acquisition goes on)"
        if is_milestone(self.slot_errors):
            trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            log.error("%s\n%s", text, trace.rstrip())
        with contextlib.suppress(Exception):  # a broken status bar must not raise from here
            self.status.showMessage(self.message)

    def tick(self) -> None:
        """One frame, guarded: an exception is reported (:meth:`slot_failed`), not raised."""
        try:
            self._tick()
        except Exception as exc:
            self.slot_failed("the frame timer", exc)

    def _tick(self) -> None:
        """One frame: read state, update what changed."""
        start = time.perf_counter()
        if not math.isnan(self._last_frame):
            self.clock.add_interval(start - self._last_frame)
        self._last_frame = start
        if not self.paused:
            self.update_display()
        if time.monotonic() - self._last_slow >= SLOW_PERIOD_S:
            self._slow_update()
        self.frames += 1
        self.clock.add_cost((time.perf_counter() - start) * 1000.0)

    def update_display(self) -> None:
        """Read buffers, onsets and predictions; redraw the panels."""
        aligner = self.core.aligner
        self.log.update(aligner, getattr(self.session, "store", None))
        t_end = self.data_time()
        if not math.isfinite(t_end):
            return
        if math.isnan(self.origin):
            firsts = [r.buffer.first_timestamp for r in list(self.core.roles.values())]
            self.origin = math.floor(min(t for t in firsts if math.isfinite(t)))
        self.t_end = t_end
        trials = self.log.in_range(t_end - self.window_seconds, t_end, self.trial_duration)
        self.points_drawn = self.signals.update_view(
            self.core.roles, t_end, self.origin, self.window_seconds, trials
        )
        self.stimulus.update_view(
            aligner.last_onset, self.core.roles.get("gaze"), t_end, self.signals.series.get("gaze")
        )
        self.plane.update_view(self.log)
        self.values.update_view(self.log)
        self.timeline.update_view(self.log)
        if self.continuous is not None:
            self.continuous.update_view(self.log, self.origin, t_end)
        if self.eeg is not None:
            self.eeg.update_view(self.core.roles.get("eeg"))
        if self.face is not None:
            self.face.update_view(self.core.roles.get("face"), self.window_seconds)

    def _slow_update(self) -> None:
        self._last_slow = time.monotonic()
        plan = self.live.plan
        self.health.update_view(plan, self.live.health, self.required)
        self._update_banner(plan)
        self._sync_record_button()
        st = self.core.aligner.stats
        records = list(self.log.predictions)
        preds = [p for p in records if getattr(p, "status", "predicted") == "predicted"]
        flagged = sum(1 for p in preds if p.flagged)
        no_data = sum(1 for p in records if getattr(p, "status", "") == "no_data")
        failed = sum(1 for p in records if getattr(p, "status", "") == "failed")
        left_out = (f" · {no_data} without usable data" if no_data else "") + (
            f" · {failed} failed" if failed else ""
        )
        self.summary.setText(
            f"trials cut {st.trials_cut} ({st.incomplete} incomplete) · pending "
            f"{self.core.aligner.pending} · predictions {len(preds)} ({flagged} flagged)"
            + left_out
            + (f" · {problems}" if (problems := st.marker_problems()) else "")
        )
        fps = self.fps_recent()
        paused = "DISPLAY PAUSED (acquisition goes on) · " if self.paused else ""
        self.status.showMessage(
            f"{paused}display {fps:.0f} fps · {self.points_drawn} points/frame · "
            f"window {self.window_seconds:g} s" + (f" · {self.message}" if self.message else "")
        )

    def _update_banner(self, plan) -> None:
        missing = [r for r in ROLES if r not in plan.roles]
        parts = []
        required = [r for r in missing if r in self.required]
        optional = [r for r in missing if r not in self.required]
        if required:
            parts.append(
                f"⚠ No stream for required role(s): {', '.join(required)}: trials cannot be "
                "complete without them."
            )
        if optional:
            parts.append(
                f"⚠ No stream for role(s): {', '.join(optional)} (not required here: trials "
                "are cut without it and count it as missing)."
            )
        if missing:
            parts[-1] += " See Streams… for what is visible."
        bad = []
        for role, cand in plan.roles.items():
            h = self.live.health.get(cand.spec.key)
            if h is not None and h.state.value in ("lost", "error"):
                bad.append(f"{role} stream '{cand.spec.name}' {h.state.value}")
        if bad:
            parts.append("⚠ " + "; ".join(bad))
        text = "   ".join(parts)
        if text != self.banner.text():
            self.banner.setText(text)
        self.banner.setVisible(bool(text))
        self.missing_roles = missing

    def fps_recent(self, n: int = 40) -> float:
        """Frames per second over the last ``n`` frames."""
        return self.clock.fps(n)

    def frame_stats(self) -> dict:
        """Frame rate and frame cost so far (for the benchmark)."""
        return {"frames": self.frames, **self.clock.stats()}

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:  # noqa: N802 (Qt's name)
        """Stop the frame timer; a recording is left to the session to stop."""
        self.timer.stop()
        self._executor.shutdown(wait=False)
        super().closeEvent(event)
        self.closed.emit()
