"""Export recordings as a BIDS 1.11 dataset (behavioural data with physiology and eye tracking).

One XDF recording becomes ``sub-<p>/[ses-<s>/]beh/``:

- eye tracking as BIDS eye-tracking physio, one ``_recording-eye<N>_physio.tsv.gz`` per eye with
  its sidecar (``PhysioType: "eyetrack"``);
- GSR, heart rate, ECG, PPG as ``_recording-<name>_physio.tsv.gz`` with sidecars;
- facial action units (the ``face`` role) as ``_recording-face_physio.tsv.gz`` and a continuous
  rating (slider/joystick stream of type Annotation/Rating/...) as
  ``_recording-rating_physio.tsv.gz``;
- ``_events.tsv``/``.json``: one row per trial (onset, duration, stimulus, rating, prediction
  with its quality and flag), the same trials and predictions as ``emoeye replay --fast``.

The ``eeg`` role goes to ``sub-<p>/[ses-<s>/]eeg/``: BrainVision files written with pybv (the
``bids`` extra; without it the rest is exported and the notes say so), ``_eeg.json``,
``_channels.tsv`` and ``_events.tsv`` whose onsets count from the EEG file's first sample.

Every continuous file is written on a uniform grid at the stream's nominal rate (irregular
streams at their median rate, RR/IBI intervals as heart rate at 4 Hz): BIDS physio files have
no per-sample time except the eye tracker's ``timestamp`` column. Time zero of a recording is
its first sample on the common clock; events' ``onset`` and physio ``StartTime`` count from it.

The dataset-level files (``dataset_description.json``, ``participants.tsv``/``.json``,
``README``) are rebuilt from the ``sub-*`` folders by :func:`finalize_dataset`, so recordings
exported separately (``emoeye batch export bids``) give the same dataset as one command.
What each recording was exported from is kept in ``sourcedata/emoeye/`` (the validator ignores
``sourcedata``).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

BIDS_VERSION = "1.11.0"
LABEL = re.compile(r"^[0-9a-zA-Z]+$")
HR_INTERVAL_RATE = 4.0
"""Rate (Hz) RR/IBI intervals are resampled to as heart rate (the usual HRV resampling rate)."""
MAX_GAP_PERIODS = 2.5
"""A grid point farther than this many sample periods from any sample is ``n/a`` (a dropout)."""

ROLE_UNITS = {"gsr": "uS", "hr": "bpm", "interval": "s", "pupil": "mm", "ecg": "mV"}
"""Units by role when the stream header declares none."""


class BidsError(ValueError):
    """A refused export (an id that is no BIDS label, two recordings for one subject...)."""


@dataclass
class Screen:
    """The stimulus screen: BIDS needs all three for ``gaze-on-screen`` coordinates.

    Attributes
    ----------
    resolution
        (width, height) in pixels.
    size
        (width, height) in metres.
    distance
        Eye-to-screen distance in metres.
    """

    resolution: tuple[int, int] | None = None
    size: tuple[float, float] | None = None
    distance: float | None = None

    @property
    def complete(self) -> bool:
        """True when resolution, size and distance are all known."""
        return None not in (self.resolution, self.size, self.distance)


@dataclass
class ExportOptions:
    """How recordings are exported.

    Attributes
    ----------
    task
        BIDS task label.
    config
        Acquisition config (role binding, trial window); None: defaults.
    checkpoint
        Model checkpoint (None: the bundled model).
    use_model
        Predict every trial (False: no prediction columns filled).
    screen
        The stimulus screen.
    dejitter
        Read regular streams with pyxdf's dejitter fit.
    power_line_hz
        Mains frequency where the EEG was recorded (50 or 60), for ``_eeg.json``; None: "n/a"
        (an LSL stream does not say).
    eeg_reference
        The EEG reference (e.g. "Cz", "linked mastoids"), for ``_eeg.json``; None: "n/a".
    """

    task: str
    config: object = None
    checkpoint: Path | None = None
    use_model: bool = True
    screen: Screen = field(default_factory=Screen)
    dejitter: bool = False
    power_line_hz: float | None = None
    eeg_reference: str | None = None


def check_label(kind: str, value: str) -> str:
    """``value`` when it is a BIDS label (letters and digits only), else a :class:`BidsError`
    naming it. A leading ``sub-``/``ses-`` is dropped first."""
    text = str(value).strip()
    prefix = {"participant": "sub-", "session": "ses-"}.get(kind)
    if prefix and text.startswith(prefix):
        text = text[len(prefix) :]
    if not LABEL.match(text):
        raise BidsError(
            f"{kind} id {value!r} is not a valid BIDS label (letters and digits only); "
            "map it to one with --participants map.csv"
        )
    return text


def read_participants_map(path: Path) -> dict[str, tuple[str, str | None]]:
    """A CSV mapping recordings to participants: columns ``file``, ``participant`` and optional
    ``session``. Keys are the file names as written (matched by path, name or stem)."""
    out: dict[str, tuple[str, str | None]] = {}
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as exc:
        raise BidsError(f"cannot read participants map {path}: {exc.strerror or exc}") from None
    if not rows or not {"file", "participant"} <= set(rows[0]):
        raise BidsError(f"{path}: a participants map needs the columns file,participant[,session]")
    for row in rows:
        out[row["file"].strip()] = (
            row["participant"].strip(),
            (row.get("session") or "").strip() or None,
        )
    return out


def lookup_map(mapping: dict, path: Path) -> tuple[str, str | None] | None:
    """The map's entry for a recording, by path, file name or stem."""
    for key in (str(path), path.name, path.stem):
        if key in mapping:
            return mapping[key]
    return None


# ---------------------------------------------------------------- writing helpers


def _write_bytes(path: Path, data: bytes) -> None:
    """Write through a temporary file renamed over the target (never a partial file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _write_json(path: Path, obj: dict) -> None:
    _write_bytes(path, (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode())


def _tsv_cell(v) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        # 10 significant digits: an onset an hour in keeps its microseconds (6 would round
        # 1234.5678 s to 1234.57).
        return "n/a" if not np.isfinite(v) else f"{v:.10g}"
    return str(v)


def _write_tsv(path: Path, columns: list[str], rows: list[list]) -> None:
    lines = ["\t".join(columns)] + ["\t".join(_tsv_cell(v) for v in row) for row in rows]
    _write_bytes(path, ("\n".join(lines) + "\n").encode())


def _write_physio(path: Path, data: np.ndarray, fmt: list[str], chunk: int = 100_000) -> None:
    """A headerless gzipped TSV (BIDS physio); NaN as ``n/a``. Written in chunks through a
    temporary file (an hour of 1200 Hz gaze never sits in memory as text), gzip without name
    or time so the same data always gives the same bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with (
            open(tmp, "wb") as raw,
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz,
        ):
            for i in range(0, len(data), chunk):
                text = io.BytesIO()
                np.savetxt(text, data[i : i + chunk], fmt=fmt, delimiter="\t")
                gz.write(re.sub(rb"-?nan", b"n/a", text.getvalue()))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def uniform(ts: np.ndarray, values: np.ndarray, rate: float) -> tuple[np.ndarray, np.ndarray]:
    """Samples on a uniform grid at ``rate`` from the first stamp: linear interpolation of each
    column's finite samples; a grid point between two samples more than :data:`MAX_GAP_PERIODS`
    periods apart is NaN (a dropout is left a gap, not bridged).

    Parameters
    ----------
    ts
        Sample times (s), increasing.
    values
        (n, k) float values, NaN where invalid.
    rate
        Grid rate in Hz.

    Returns
    -------
    tuple
        Grid times and (m, k) values.
    """
    values = np.asarray(values, dtype=np.float64).reshape(len(ts), -1)
    if len(ts) == 0:
        return np.zeros(0), np.zeros((0, values.shape[1]))
    n = int(np.floor((ts[-1] - ts[0]) * rate + 1e-9)) + 1
    grid = ts[0] + np.arange(n) / rate
    out = np.full((n, values.shape[1]), np.nan)
    limit = MAX_GAP_PERIODS / rate
    for j in range(values.shape[1]):
        ok = np.isfinite(values[:, j])
        t, v = ts[ok], values[ok, j]
        if len(t) == 0:
            continue
        out[:, j] = np.interp(grid, t, v)
        # A grid point between two samples farther apart than the limit lies in a dropout.
        i = np.clip(np.searchsorted(t, grid), 1, len(t) - 1) if len(t) > 1 else np.zeros(n, int)
        span = t[i] - t[i - 1] if len(t) > 1 else np.zeros(n)
        exact = np.isclose(grid, t[i], rtol=0, atol=1e-9) | np.isclose(
            grid, t[i - 1], rtol=0, atol=1e-9
        )
        out[(span > limit) & ~exact, j] = np.nan
    return grid, out


def _rate_of(stream) -> float:
    """The nominal rate, or for an irregular stream its median rate (rounded to 0.01 Hz)."""
    if stream.spec.nominal_srate > 0:
        return float(stream.spec.nominal_srate)
    d = np.diff(stream.timestamps)
    d = d[d > 0]
    return round(1.0 / float(np.median(d)), 2) if len(d) else 1.0


def header_units(header: str) -> dict[str, str]:
    """Channel label → unit declared in a stream's XML header (``desc/channels/channel``)."""
    import xml.etree.ElementTree as ET

    try:
        root = ET.fromstring(header)
    except ET.ParseError:
        return {}
    out = {}
    for ch in root.iterfind("./desc/channels/channel"):
        label, unit = ch.findtext("label"), ch.findtext("unit")
        if label and unit and unit.strip():
            out[label.strip().lower()] = unit.strip()
    return out


# ---------------------------------------------------------------- one recording


@dataclass
class _Target:
    out: Path
    participant: str
    session: str | None
    task: str

    @property
    def folder(self) -> Path:
        f = self.out / f"sub-{self.participant}"
        if self.session:
            f = f / f"ses-{self.session}"
        return f / "beh"

    @property
    def eeg_folder(self) -> Path:
        return self.folder.parent / "eeg"

    @property
    def stem(self) -> str:
        ses = f"_ses-{self.session}" if self.session else ""
        return f"sub-{self.participant}{ses}_task-{self.task}"

    @property
    def provenance(self) -> Path:
        ses = f"_ses-{self.session}" if self.session else ""
        return self.out / "sourcedata" / "emoeye" / f"sub-{self.participant}{ses}.json"


def target_of(path: Path, out: Path, task: str, participant: str | None, session: str | None,
              header_participant: str | None = None) -> _Target:  # fmt: skip
    """Where a recording goes; refuses ids that are not BIDS labels (naming them)."""
    check_label("task", task)
    pid = participant or header_participant
    if not pid:
        raise BidsError(
            f"{path}: no participant id in the file; give one with --participants map.csv"
        )
    return _Target(
        out,
        check_label("participant", pid),
        check_label("session", session) if session else None,
        task,
    )


def _eye_files(stream, reading, options: ExportOptions, t0: float) -> list[tuple]:
    """(recording label, data, fmt, sidecar) per eye of the gaze stream."""
    from acquisition.lsl.reading import column_index, validity

    cols = reading.columns
    raw = stream.values(dtype=np.float64)
    n = len(raw)
    units = header_units(stream.header)
    sides = [s for s in ("left", "right") if f"x_{s}" in cols or f"pupil_{s}" in cols]
    flip = bool(reading.params.get("flip_y"))
    pixels_in = reading.params.get("screen")  # raw x/y are pixels of this screen
    screen = options.screen
    rate = _rate_of(stream)

    def get(key: str) -> np.ndarray | None:
        c = cols.get(key)
        return None if c is None else raw[:, column_index(stream.spec, c)]

    def unit_of(key: str, default: str) -> str:
        c = cols.get(key)
        if isinstance(c, str) and c.lower() in units:
            return units[c.lower()]
        return default

    files = []
    for k, side in enumerate(sides or ["cyclopean"], start=1):
        own = side != "cyclopean" and f"x_{side}" in cols
        x = get(f"x_{side}") if own else get("x")
        y = get(f"y_{side}") if own else get("y")
        valid = validity(get(f"valid_{side}") if own else get("valid"), reading, n)
        if x is None or y is None:
            continue
        x, y = x.copy(), y.copy()
        x[~valid] = np.nan
        y[~valid] = np.nan
        if pixels_in:
            coord_unit = unit_of("x", "pixel")
            if flip:
                y = pixels_in[1] - y
        else:
            if flip:
                y = 1.0 - y
            coord_unit = "fraction of the screen"
            if screen.resolution is not None:  # normalised → the configured screen's pixels
                x, y = x * screen.resolution[0], y * screen.resolution[1]
                coord_unit = "pixel"
        pupil_key = f"pupil_{side}" if f"pupil_{side}" in cols else "pupil"
        pupil = get(pupil_key)
        if pupil is not None:
            pupil = pupil.copy()
            pv = get(f"pupil_valid_{side}")
            if pv is not None:
                pupil[~validity(pv, reading, n)] = np.nan
            pupil[~np.isfinite(pupil) | (pupil <= 0)] = np.nan
        columns = ["timestamp", "x_coordinate", "y_coordinate"]
        data = [x, y]
        if pupil is not None:
            columns.append("pupil_size")
            data.append(pupil)
        grid, vals = uniform(stream.timestamps, np.column_stack(data), rate)
        table = np.column_stack([grid - t0, vals])
        pupil_label = str(cols.get(pupil_key, "")).lower()
        area = pupil_label.startswith("pa") or "area" in pupil_label
        custom = not pixels_in and not screen.complete
        sidecar = {
            "PhysioType": "eyetrack",
            "SamplingFrequency": rate,
            "StartTime": round(float(grid[0] - t0), 6) if len(grid) else 0.0,
            "Columns": columns,
            "RecordedEye": side,
            "SampleCoordinateSystem": "custom" if custom else "gaze-on-screen",
            "Manufacturer": stream.spec.manufacturer or "n/a",
            "timestamp": {
                "Description": "Time of the sample from the recording's start (s), on the "
                "recording's common (LSL) clock",
                "Units": "s",
            },
            "x_coordinate": {
                "Description": "Gaze position, horizontal, origin at the screen's top-left",
                "Units": coord_unit,
            },
            "y_coordinate": {
                "Description": "Gaze position, vertical (down), origin at the screen's top-left",
                "Units": coord_unit,
            },
        }
        if custom:
            sidecar["SampleCoordinateSystemDescription"] = (
                "Gaze on the stimulus screen in screen fractions: (0, 0) top-left, (1, 1) "
                "bottom-right (give the screen's resolution, size and distance for "
                "gaze-on-screen pixels)"
            )
        if side == "cyclopean" or not own:
            sidecar["GazeNote"] = (
                "the device reports one gaze point for both eyes; it is repeated in each eye's file"
                if side != "cyclopean"
                else "one gaze point for both eyes"
            )
        if pupil is not None:
            sidecar["pupil_size"] = {
                "Description": f"Pupil {'area' if area else 'diameter'} of the {side} eye"
                + (" (both eyes' mean)" if pupil_key == "pupil" else ""),
                "Units": unit_of(pupil_key, "arbitrary" if area else ROLE_UNITS["pupil"]),
            }
        if screen.distance is not None:
            sidecar["EyeTrackerDistance"] = screen.distance * 100.0  # cm, as BIDS asks
        fmt = ["%.6f", "%.6g", "%.6g"] + (["%.6g"] if pupil is not None else [])
        files.append((f"eye{k}", table, fmt, sidecar))
    return files


def _generic_file(name: str, stream, ts, values, columns, descr, rate, t0, extra=None):
    grid, vals = uniform(ts, values, rate)
    sidecar = {
        "PhysioType": "generic",
        "SamplingFrequency": rate,
        "StartTime": round(float(grid[0] - t0), 6) if len(grid) else 0.0,
        "Columns": [c for c, _, _ in descr],
        "Manufacturer": stream.spec.manufacturer or "n/a",
        "SourceStream": stream.spec.name,
    }
    for col, text, unit in descr:
        sidecar[col] = {"Description": text, "Units": unit}
    sidecar.update(extra or {})
    return (name, vals, ["%.6g"] * vals.shape[1], sidecar)


def _column_unit(stream, units: dict[str, str], column: str | int, default: str) -> str:
    """The unit the stream header (``units``: :func:`header_units`) gives a reading's column, a
    label or an index, else ``default``."""
    labels = stream.spec.channel_labels or ()
    label = column if isinstance(column, str) else _channel_label(labels, column)
    return units.get(label.lower(), default)


def _channel_label(labels, i: int) -> str:
    """Channel ``i``'s label, stripped; "" when the header gives none."""
    return labels[i].strip() if i < len(labels) and labels[i] else ""


def _role_files(role: str, stream, reading, t0: float) -> list[tuple]:
    """(recording label, data, fmt, sidecar) of a GSR or heart role."""
    units = header_units(stream.header)

    def unit_of(key: str, default: str) -> str:
        return _column_unit(stream, units, reading.columns.get(key, 0), default)

    def raw(key: str) -> np.ndarray:
        from acquisition.lsl.reading import column_index

        return stream.values(dtype=np.float64)[
            :, column_index(stream.spec, reading.columns.get(key, 0))
        ]

    ts, rate, kind = stream.timestamps, _rate_of(stream), reading.kind
    if kind == "gsr":
        v = raw("gsr")
        return [
            _generic_file("gsr", stream, ts, v, None,
                          [("gsr", "Skin conductance (electrodermal activity)", unit_of("gsr", "uS"))],
                          rate, t0)
        ]  # fmt: skip
    if kind == "hr_direct":
        return [
            _generic_file("hr", stream, ts, raw("hr"), None,
                          [("heart_rate", "Heart rate as reported by the device", unit_of("hr", "bpm"))],
                          rate, t0)
        ]  # fmt: skip
    if kind in ("hr_ecg", "hr_ppg"):
        name = "ecg" if kind == "hr_ecg" else "ppg"
        what = "Electrocardiogram" if name == "ecg" else "Photoplethysmogram (blood volume pulse)"
        default = "mV" if name == "ecg" else "arbitrary"
        return [
            _generic_file(name, stream, ts, raw("signal"), None,
                          [("cardiac", what, unit_of("signal", default))], rate, t0)
        ]  # fmt: skip
    if kind == "hr_intervals":
        ibi = raw("interval")
        unit = reading.params.get("interval_unit", "s")
        ibi_s = ibi / 1000.0 if unit == "ms" else ibi
        with np.errstate(divide="ignore", invalid="ignore"):
            hr = np.where((ibi_s > 0.25) & (ibi_s < 2.5), 60.0 / ibi_s, np.nan)
        ok = np.isfinite(hr)
        # An irregular stream: each interval ends at its beat; written as heart rate at 4 Hz.
        return [
            _generic_file("hr", stream, ts[ok], np.column_stack([hr[ok], ibi_s[ok]]), None,
                          [("heart_rate", "Heart rate from the beat-to-beat intervals", "bpm"),
                           ("interval", "Beat-to-beat (RR/IBI) interval", "s")],
                          HR_INTERVAL_RATE, t0,
                          {"Resampling": f"irregular intervals interpolated to {HR_INTERVAL_RATE:g} Hz"})
        ]  # fmt: skip
    return []


# ---------------------------------------------------------------- optional modalities

EEG_TO_UV = {"uv": 1.0, "µv": 1.0, "μv": 1.0, "mv": 1e3, "v": 1e6, "nv": 1e-3}
"""Factors to µV of a voltage unit (stream header or the reading's ``unit`` parameter)."""


def _face_file(stream, reading, t0: float) -> list[tuple]:
    """(label, data, fmt, sidecar) of the face (action unit) stream: each AU's intensity,
    ``n/a`` where tracking failed, then the tracker's confidence when it gives one."""
    from acquisition.lsl.modalities import extract_face
    from acquisition.lsl.reading import column_index

    raw = stream.values(dtype=np.float64)
    aus, names = extract_face(reading, stream.spec, raw, column_index)
    names = names[:-1]  # the last column is validity
    units = header_units(stream.header)
    columns = [aus[:, : len(names)]]
    descr = [
        (au, f"Action unit {au[2:].lstrip('0')} intensity as the tracker reports it; n/a where "
         "tracking failed", _column_unit(stream, units, reading.columns[au], "arbitrary"))
        for au in names
    ]  # fmt: skip
    if "confidence" in reading.columns:
        columns.append(raw[:, column_index(stream.spec, reading.columns["confidence"])][:, None])
        descr.append(("confidence", "The tracker's confidence in the face fit (0-1)", "arbitrary"))
    data = np.column_stack(columns)
    threshold = reading.params.get("valid_threshold", 0.5)
    return [
        _generic_file("face", stream, stream.timestamps, data, None, descr, _rate_of(stream), t0,
                      {"Validity": f"action units are n/a where tracking failed (success 0 or "
                                   f"confidence under {threshold:g})"})
    ]  # fmt: skip


def _rating_files(streams: dict, t0: float) -> list[tuple]:
    """(label, data, fmt, sidecar) of each continuous rating (slider/joystick) stream: every
    channel, named by its label (``rating<N>`` when it has none)."""
    from emoeye.continuous import ANNOTATION_TYPES

    files = []
    for stream in streams.values():
        spec = stream.spec
        if spec.is_string or spec.type.lower().replace(" ", "") not in ANNOTATION_TYPES:
            continue
        if not len(stream):
            continue
        labels = list(spec.channel_labels or ())
        units = header_units(stream.header)
        descr = []
        for i in range(spec.channel_count):
            label = _channel_label(labels, i)
            col = re.sub(r"[^0-9a-zA-Z_]", "_", label) or f"rating{i + 1}"
            descr.append(
                (col, f"Continuous rating ({label or f'channel {i + 1}'}) from the "
                 f"{spec.name} slider/joystick, on the device's own scale",
                 units.get(label.lower(), "arbitrary"))
            )  # fmt: skip
        files.append(
            _generic_file("rating", stream, stream.timestamps, stream.values(dtype=np.float64),
                          None, descr, _rate_of(stream), t0)
        )  # fmt: skip
    return files


@dataclass
class EegData:
    """An EEG stream ready for BrainVision: (channels, samples) in each channel's unit.

    Attributes
    ----------
    data
        (n_channels, n_samples) float64; EEG channels in µV, NaN in dropouts.
    names, types, units
        Per channel: the name written, ``EEG`` or ``MISC``, the unit.
    rate
        Sampling rate (Hz).
    start
        Time of the first sample on the recording's clock (s).
    notes
        What was changed on the way (resampled, labels replaced).
    """

    data: np.ndarray
    names: list[str]
    types: list[str]
    units: list[str]
    rate: float
    start: float
    notes: list[str]


def eeg_data(stream, reading) -> EegData:
    """The bound EEG stream's channels as written to BrainVision.

    Every channel of the stream is kept: the ones the EEG reading reads are ``EEG`` in µV
    (converted from the header's or the reading's unit), named as the reading names them; the
    others (``AUX``, ``TRIGGER``...) are ``MISC`` under their header label, unscaled. A channel
    with no usable label (none, blank, a repeat) is named ``EEG<N>`` (1-based), noted. A
    regular stream's samples are written as they are; an irregular one, or one with dropouts
    (more than :data:`MAX_GAP_PERIODS` periods between samples), goes through :func:`uniform`.
    """
    from acquisition.lsl.reading import column_index

    spec = stream.spec
    n_ch = spec.channel_count
    labels = list(spec.channel_labels or ())
    units = header_units(stream.header)
    read = {column_index(spec, col): name for name, col in reading.columns.items()}
    default_unit = str(reading.params.get("unit", "uV")).lower()
    names, types, unit_list, factors, unnamed = [], [], [], [], []
    seen: set[str] = set()
    for i in range(n_ch):
        label = _channel_label(labels, i)
        name = str(read.get(i, label)).strip()
        if not name or name.lower() in seen or "," in name:
            unnamed.append(i + 1)
            name = f"EEG{i + 1}"
        seen.add(name.lower())
        names.append(name)
        declared = units.get(label.lower()) if label else None
        if i in read:
            types.append("EEG")
            unit = (declared or default_unit).lower()
            factors.append(EEG_TO_UV.get(unit, 1.0))
            unit_list.append("µV")
        else:
            types.append("MISC")
            factors.append(1.0)
            unit_list.append(declared or "n/a")
    notes = []
    if unnamed:
        notes.append(
            f"EEG channel(s) {', '.join(map(str, unnamed))} have no usable label in the stream "
            f"header: written as {', '.join(f'EEG{i}' for i in unnamed)}"
        )
    ts = np.asarray(stream.timestamps, np.float64)
    values = stream.values(dtype=np.float64) * np.asarray(factors)
    rate = _rate_of(stream)
    gaps = np.diff(ts) > MAX_GAP_PERIODS / rate if len(ts) > 1 else np.zeros(0, bool)
    if spec.nominal_srate <= 0 or gaps.any():
        why = "irregular stream" if spec.nominal_srate <= 0 else f"{int(gaps.sum())} dropout(s)"
        notes.append(f"EEG resampled to a uniform {rate:g} Hz grid ({why}; gaps left n/a)")
        ts, values = uniform(ts, values, rate)
    return EegData(values.T, names, types, unit_list, rate, float(ts[0]) if len(ts) else 0.0, notes)


def _write_eeg(
    folder: Path,
    stem: str,
    options: ExportOptions,
    eeg: EegData,
    manufacturer: str,
    onsets: list[float],
    duration: float,
) -> list[Path]:
    """BrainVision files (pybv), ``_eeg.json`` and ``_channels.tsv``; the paths written.

    Each stimulus onset (s from the EEG file's first sample) is a ``Stimulus`` marker ``S  1``
    lasting the trial window in the ``.vmrk``, so that EEG tools that read only BrainVision
    (EEGLAB, BrainVision Analyzer) see the trials too; ``_events.tsv`` says which is which."""
    import warnings

    from pybv import write_brainvision

    folder.mkdir(parents=True, exist_ok=True)
    base = f"{stem}_eeg"
    n = eeg.data.shape[1]
    length = max(1, int(round(duration * eeg.rate)))
    markers = [
        {"onset": k, "duration": min(length, n - k), "description": 1, "type": "Stimulus"}
        for k in (int(round(t * eeg.rate)) for t in onsets)
        if 0 <= k < n
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pybv warns about MISC channels' non-voltage units
        write_brainvision(
            data=eeg.data * np.where(np.array(eeg.units) == "µV", 1e-6, 1.0)[:, None],
            sfreq=eeg.rate,
            ch_names=eeg.names,
            fname_base=base,
            folder_out=str(folder),
            overwrite=True,
            events=markers or None,
            unit=eeg.units,
            resolution=1.0,  # float32 as it is: one rounding, no scaling
            fmt="binary_float32",
        )
    counts = {t: eeg.types.count(t) for t in ("EEG", "MISC")}
    sidecar = {
        "TaskName": options.task,
        "SamplingFrequency": eeg.rate,
        "EEGReference": options.eeg_reference or "n/a",
        "PowerLineFrequency": options.power_line_hz or "n/a",
        "SoftwareFilters": "n/a",
        "Manufacturer": manufacturer or "n/a",
        "RecordingType": "continuous",
        "RecordingDuration": round(n / eeg.rate, 6) if eeg.rate > 0 else 0.0,
        "EEGChannelCount": counts["EEG"],
        "MISCChannelCount": counts["MISC"],
    }
    from acquisition.lsl.modalities import is_electrode

    if all(is_electrode(nm) for nm, t in zip(eeg.names, eeg.types, strict=True) if t == "EEG"):
        sidecar["EEGPlacementScheme"] = "10-20"  # every EEG channel has a 10-20/10-10 name
    _write_json(folder / f"{base}.json", sidecar)
    _write_tsv(
        folder / f"{stem}_channels.tsv",
        ["name", "type", "units"],
        [[nm, t, u] for nm, t, u in zip(eeg.names, eeg.types, eeg.units, strict=True)],
    )
    return [folder / f"{base}{ext}" for ext in (".vhdr", ".vmrk", ".eeg", ".json")] + [
        folder / f"{stem}_channels.tsv"
    ]


EVENT_COLUMNS = {
    "onset": ("Stimulus onset from the recording's start", "s"),
    "duration": ("Length of the trial window cut at the onset", "s"),
    "trial_type": ("Always 'stimulus': one row per picture shown", None),
    "stim_file": ("The picture shown, under stimuli/", None),
    "stimulus_id": ("The stimulus id the experiment's marker gave", None),
    "trial_id": ("EmoEye's trial id", None),
    "rated_arousal": ("The participant's arousal rating (1-7), n/a when none was given", None),
    "rated_valence": ("The participant's valence rating (1-7), n/a when none was given", None),
    "pred_arousal": ("Arousal predicted by the model (1-7)", None),
    "pred_valence": ("Valence predicted by the model (1-7)", None),
    "quality": ("Trial quality score (0-1) over the required roles", None),
    "complete": ("1 when every required role covered the window", None),
    "flagged": ("1 when the prediction is flagged (quality under the threshold)", None),
    "status": (
        "predicted, or not_predicted (no usable data, or the model failed); n/a without a model",
        None,
    ),
}


def _events(rows, predictions, unpredicted, stim_files, duration, t0) -> list[list]:
    out = []
    for row in rows:
        p = predictions.get(row["trial_id"])
        r = row.get("ratings") or {}
        out.append(
            [
                round(float(row["onset"]) - t0, 6),
                duration,
                "stimulus",
                stim_files.get(row["stimulus_id"]),
                row["stimulus_id"],
                row["trial_id"],
                r.get("arousal"),
                r.get("valence"),
                None if p is None else round(float(p.arousal), 4),
                None if p is None else round(float(p.valence), 4),
                round(float(row["quality"]["score"]), 4),
                int(bool(row["quality"]["complete"])),
                None if p is None else int(bool(p.flagged)),
                unpredicted if p is None else p.status,
            ]
        )
    return out


def export_recording(
    path: Path,
    out: Path,
    options: ExportOptions,
    participant: str | None = None,
    session: str | None = None,
    force: bool = True,
) -> list[dict]:
    """Export one XDF recording into the BIDS dataset at ``out``.

    Parameters
    ----------
    path
        The recording.
    out
        Dataset root (created when missing).
    options
        Task, config, model, screen.
    participant, session
        Ids (participant default: the file header's); refused unless BIDS labels.
    force
        Replace this subject/session's files when they came from another recording.

    Returns
    -------
    list of dict
        One per subject written (a recording shared by several participants, by its header's
        ``participant_schedule``, gives one each): ``participant``, ``session``, ``files``
        written (relative to ``out``), ``missing`` roles, ``trials``, ``notes`` (why trials are
        missing, file warnings).

    Raises
    ------
    BidsError
        A participant, session or task id that is no BIDS label; no participant id; the
        subject/session already exported from another recording.
    """
    from acquisition.config import AcquisitionConfig
    from acquisition.lsl.presets import ROLES
    from acquisition.offline_acquisition import bind_offline
    from emoeye.commands.common import open_recording
    from emoeye.errors import CliError

    path, out = Path(path), Path(out)
    config = options.config or AcquisitionConfig()
    source = open_recording(path, None, options.dejitter)
    segments = _segments(path, source, participant)
    targets = [
        target_of(path, out, options.task, pid, session, source.participant)
        for pid, _, _ in segments
    ]  # every id checked before anything is written
    for target in targets:
        prov_path = target.provenance
        if prov_path.exists() and not force:
            prior = json.loads(prov_path.read_text()).get("source")
            if prior and Path(prior).name != path.name:
                raise BidsError(
                    f"sub-{target.participant}"
                    + (f" ses-{target.session}" if target.session else "")
                    + f" already holds {prior}; give each recording a session (--sessions)"
                )
    if len(segments) == 1:
        config.participant = targets[0].participant
    binding = bind_offline(source, config)
    roles = binding.plan.roles
    missing = [r for r in ROLES if r not in roles]
    notes: list[str] = [f"role {r} has no stream in the recording: not exported" for r in missing]
    streams = {s.spec.key: s for s in source.xdf_streams if s.stream_id not in source.foreign}

    # Trials and predictions: exactly replay --fast's.
    rows: list[tuple] = []
    result: dict = {}
    try:
        from emoeye.commands.replay import replay_fast

        result = replay_fast(
            source,
            config,
            options.checkpoint,
            use_model=options.use_model,
            on_row=lambda row, pred: rows.append((row, pred)),
        )
    except CliError as exc:  # a required role is missing: no trials, the signals still go
        notes.append(f"no trials: {exc}")
    predictions = {r["trial_id"]: p for r, p in rows if p is not None}
    unpredicted = "not_predicted" if result.get("model") else None
    stim_files = _copy_stimuli(out, config, [r["stimulus_id"] for r, _ in rows])

    summaries = []
    t_start = float(source.t_start) if np.isfinite(source.t_start) else 0.0
    for (pid, a, b), target in zip(segments, targets, strict=True):
        t0 = max(a, t_start)
        parts = {k: _Part(st, a, b) for k, st in streams.items()}
        files = _physio_files(binding, parts, options, t0)
        mine = [r for r, _ in rows if len(segments) == 1 or r.get("participant") == pid]
        folder = target.folder
        for old in (folder, target.eeg_folder):
            if old.exists():
                shutil.rmtree(old)  # a re-export replaces the recording's files, none left over
        written: list[str] = []
        own_notes: list[str] = []
        duration = float(config.trial.duration)
        if "eeg" in roles and len(parts.get(roles["eeg"].spec.key) or ()):
            if not _pybv_available():
                own_notes.append("EEG not exported: pip install pybv")
            else:
                c = roles["eeg"]
                eeg = eeg_data(parts[c.spec.key], c.reading)
                own_notes += eeg.notes
                # EEG events count from the EEG file's first sample (BIDS: onsets are
                # relative to the data file's start), not from the recording's.
                eeg_rows = _events(mine, predictions, unpredicted, stim_files, duration, eeg.start)
                onsets = [float(r[0]) for r in eeg_rows]
                paths = _write_eeg(target.eeg_folder, target.stem, options, eeg,
                                   c.spec.manufacturer, onsets, duration)  # fmt: skip
                paths += _write_events(target.eeg_folder, target.stem, eeg_rows, options)
                written += [str(q.relative_to(out)) for q in paths]
        for label, data, fmt, sidecar in files:
            base = folder / f"{target.stem}_recording-{label}_physio"
            _write_physio(base.with_suffix(".tsv.gz"), data, fmt)
            _write_json(base.with_suffix(".json"), {"TaskName": options.task, **sidecar})
            written += [
                str(q.relative_to(out))
                for q in (base.with_suffix(".tsv.gz"), base.with_suffix(".json"))
            ]
        if mine or files:
            beh_rows = _events(mine, predictions, unpredicted, stim_files, duration, t0)
            paths = _write_events(folder, target.stem, beh_rows, options)
            written += [str(q.relative_to(out)) for q in paths]
        summary = {
            "source": str(path),
            "participant": target.participant,
            "session": target.session,
            "files": written,
            "missing": missing,
            "trials": len(mine),
            "predictions": sum(r["trial_id"] in predictions for r in mine),
            "notes": notes + own_notes + list(source.warnings),
            "seconds": round(float(min(b, source.t_stop) - max(a, t_start)), 3)
            if np.isfinite(source.t_stop)
            else 0.0,
        }
        if len(segments) > 1:
            summary["segment"] = [
                None if not np.isfinite(a) else a,
                None if not np.isfinite(b) else b,
            ]
        keys = ("source", "participant", "session", "missing", "trials", "notes", "segment")
        _write_json(target.provenance, {k: summary[k] for k in keys if k in summary})
        summaries.append(summary)
    return summaries


class _Part:
    """The samples of a stream with a <= t < b (a participant's part of a shared recording)."""

    def __init__(self, stream, a: float, b: float) -> None:
        self.spec, self.header, self._stream = stream.spec, stream.header, stream
        self.i0, self.i1 = (int(i) for i in np.searchsorted(stream.timestamps, [a, b]))
        self.timestamps = stream.timestamps[self.i0 : self.i1]

    def __len__(self) -> int:
        return len(self.timestamps)

    def values(self, dtype=None) -> np.ndarray:
        return self._stream.values(self.i0, self.i1, dtype)


def _segments(path: Path, source, participant: str | None) -> list[tuple[str | None, float, float]]:
    """(participant, from, to) per participant of the recording: the whole file for one; by
    the header's ``participant_schedule`` when it names several (each their own subject)."""
    from emoeye.commands.dataset import _participant_schedule

    schedule = _participant_schedule(source.file.header_value("participant_schedule"))
    pids = [p for _, p in schedule]
    if len(set(pids)) <= 1:
        return [(participant or source.participant or (pids[0] if pids else None), -np.inf, np.inf)]
    if participant:
        raise BidsError(
            f"{path} holds {len(set(pids))} participants ({', '.join(dict.fromkeys(pids))}) by "
            "its participant schedule; leave it out of the participants map so each becomes "
            "its own subject"
        )
    if len(set(pids)) != len(pids):
        raise BidsError(f"{path}: a participant comes back in its schedule ({', '.join(pids)})")
    starts = [s for s, _ in schedule]
    ends = starts[1:] + [np.inf]
    return [
        (p, -np.inf if i == 0 else s, e)
        for i, ((s, p), e) in enumerate(zip(schedule, ends, strict=True))
    ]


def _physio_files(binding, streams: dict, options: ExportOptions, t0: float) -> list[tuple]:
    """(recording label, data, fmt, sidecar) of every physio file of a recording (part)."""
    roles = binding.plan.roles
    files: list[tuple] = []
    if "gaze" in roles:
        c = roles["gaze"]
        stream = streams.get(c.spec.key)
        if stream is not None and len(stream):
            files += _eye_files(stream, c.reading, options, t0)
    # Every stream that can play GSR or heart rate (a chest strap's ECG beside its RR
    # intervals): the bound one first, each stream and reading once.
    done: set = set()
    for role in ("gsr", "hr"):
        cands = [roles[role]] if role in roles else []
        cands += binding.plan.candidates.get(role, [])
        for c in cands:
            stream = streams.get(c.spec.key)
            if stream is None or not len(stream) or (c.spec.key, c.reading.kind) in done:
                continue
            done.add((c.spec.key, c.reading.kind))
            files += _role_files(role, stream, c.reading, t0)
    if "face" in roles:
        c = roles["face"]
        stream = streams.get(c.spec.key)
        if stream is not None and len(stream):
            files += _face_file(stream, c.reading, t0)
    files += _rating_files(streams, t0)
    labels: dict[str, int] = {}
    for i, (label, *rest) in enumerate(files):  # two PPG streams: ppg, ppg2
        labels[label] = labels.get(label, 0) + 1
        if labels[label] > 1:
            files[i] = (f"{label}{labels[label]}", *rest)
    return files


def _pybv_available() -> bool:
    """True when pybv (the BrainVision writer EEG export needs) can be imported."""
    try:
        import pybv  # noqa: F401
    except ImportError:
        return False
    return True


def _write_events(folder: Path, stem: str, rows: list[list], options: ExportOptions) -> list[Path]:
    """``<stem>_events.tsv`` (:data:`EVENT_COLUMNS`) and its sidecar in ``folder``; the paths."""
    ev = folder / f"{stem}_events.tsv"
    _write_tsv(ev, list(EVENT_COLUMNS), rows)
    _write_json(
        ev.with_suffix(".json"), {"TaskName": options.task, **_events_sidecar(options.screen)}
    )
    return [ev, ev.with_suffix(".json")]


def _events_sidecar(screen: Screen) -> dict:
    out: dict = {}
    for col, (text, unit) in EVENT_COLUMNS.items():
        out[col] = {"Description": text}
        if unit:
            out[col]["Units"] = unit
    out["trial_type"]["Levels"] = {"stimulus": "A picture shown to the participant"}
    pres: dict = {"SoftwareName": "n/a", "ScreenOrigin": ["top", "left"]}
    if screen.resolution is not None:
        pres["ScreenResolution"] = list(screen.resolution)
    if screen.size is not None:
        pres["ScreenSize"] = list(screen.size)
    if screen.distance is not None:
        pres["ScreenDistance"] = screen.distance
    out["StimulusPresentation"] = pres
    return out


def _copy_stimuli(out: Path, config, ids: list[str]) -> dict[str, str]:
    """Copy each shown picture to ``stimuli/``; stimulus id → its file name there."""
    from acquisition.stimulus_catalogue import StimulusCatalogue

    catalogue = StimulusCatalogue(getattr(config, "stimulus_folder", None))
    names: dict[str, str] = {}
    for sid in dict.fromkeys(ids):
        stim = catalogue.resolve(sid)
        if stim is None or not Path(stim.path).is_file():
            continue
        dest = out / "stimuli" / Path(stim.path).name
        if not dest.exists() or dest.stat().st_size != Path(stim.path).stat().st_size:
            _write_bytes(dest, Path(stim.path).read_bytes())
        names[sid] = dest.name
    return names


# ---------------------------------------------------------------- the dataset


def finalize_dataset(out: Path, name: str | None = None) -> list[str]:
    """(Re)write the dataset-level files from the ``sub-*`` folders; returns their paths.

    Deterministic: the same folders always give the same bytes, whatever order (or how many
    processes) the recordings were exported in.
    """
    from emoeye import __version__

    out = Path(out)
    subjects = sorted(p.name for p in out.glob("sub-*") if p.is_dir())
    sessions: dict[str, list[str]] = {
        s: sorted(p.name[4:] for p in (out / s).glob("ses-*") if p.is_dir()) for s in subjects
    }
    _write_json(
        out / "dataset_description.json",
        {
            "Name": name or "EmoEye Live recordings",
            "BIDSVersion": BIDS_VERSION,
            "DatasetType": "raw",
            "GeneratedBy": [
                {
                    "Name": "emoeye",
                    "Version": __version__,
                    "Description": "emoeye export bids: XDF recordings of EmoEye Live sessions",
                }
            ],
        },
    )
    _write_tsv(
        out / "participants.tsv",
        ["participant_id", "sessions"],
        [[s, ",".join(sessions[s]) or None] for s in subjects],
    )
    _write_json(
        out / "participants.json",
        {
            "participant_id": {"Description": "Participant id, from the recording or the map"},
            "sessions": {"Description": "Session labels exported for the participant"},
        },
    )
    readme = out / "README"
    if not readme.exists():
        _write_bytes(
            readme,
            b"EmoEye Live recordings exported to BIDS by `emoeye export bids`.\n\n"
            b"Each beh/ folder holds eye tracking (one physio file per eye), skin conductance and "
            b"heart signals (and, when recorded, facial action units and continuous ratings) as "
            b"physio files, and one events row per picture with the rating and the model's "
            b"prediction. EEG, when recorded, is in eeg/ as BrainVision. The pictures are in "
            b"stimuli/.\n",
        )
    return ["dataset_description.json", "participants.tsv", "participants.json", "README"]


def validator_available() -> str | None:
    """The ``bids-validator-deno`` executable, or None when it is not installed."""
    exe = shutil.which("bids-validator-deno")
    if exe is None:
        import sys

        candidate = Path(sys.executable).parent / "bids-validator-deno"
        exe = str(candidate) if candidate.exists() else None
    return exe


def validate(out: Path, timeout: float = 300.0) -> dict:
    """Run the official BIDS validator on ``out``.

    Returns
    -------
    dict
        ``errors`` and ``warnings``: lists of ``(code, location, message)``; ``returncode``.

    Raises
    ------
    BidsError
        The validator is not installed or gave no report.
    """
    import subprocess

    exe = validator_available()
    if exe is None:
        raise BidsError("the BIDS validator is not installed: pip install bids-validator-deno")
    env = {**os.environ, "DENO_NO_UPDATE_CHECK": "1"}
    proc = subprocess.run(
        [exe, "--json", "--ignoreNiftiHeaders", str(out)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise BidsError(f"the BIDS validator gave no report: {tail[0]}") from None
    issues = report.get("issues", {}).get("issues", [])
    pick = lambda level: [  # noqa: E731
        (i.get("code", ""), i.get("location", ""), (i.get("issueMessage") or "").strip())
        for i in issues
        if i.get("severity") == level
    ]
    return {"errors": pick("error"), "warnings": pick("warning"), "returncode": proc.returncode}
