"""Built-in device presets: how common devices announce themselves over LSL and how each of their
streams feeds a role.

A preset stream says what a device's outlet looks like (name, type, channel labels, rate) and how
to read a role from it (a :class:`RoleReading`). Binding rules (:mod:`acquisition.lsl.binding`) match
visible streams against these, and the simulator creates outlets from the same descriptions, so a
simulated device is bound exactly like the real one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from acquisition.streams import StreamSpec

ROLES = ("gaze", "gsr", "hr", "markers")
"""The core roles: every session looks for them (and keeps looking for them while they are
unbound)."""

EXTRA_ROLES = ("eeg", "face")
"""Optional roles (docs/modalities.md): bound when a stream fits, never looked for otherwise;
trials carry them when bound. A session without them behaves as if they did not exist."""

ALL_ROLES = ROLES + EXTRA_ROLES
"""Every role a stream can play."""

REQUIRED_ROLES = ("gaze", "gsr", "hr")
"""Roles a trial needs by default (markers open trials, they are not cut)."""

ROLE_FIELDS: dict[str, tuple[str, ...]] = {
    "gaze": ("x", "y", "pupil", "valid"),
    "gsr": ("gsr",),
    "hr": ("hr",),
}
"""Standard channels of each numeric role after extraction: gaze x/y in 0..1 screen units
(origin top-left), pupil in the device's unit (mm for most), valid 0/1; GSR in µS; HR in bpm."""

HR_KINDS = ("hr_direct", "hr_intervals", "hr_ecg", "hr_ppg")
"""How a heart-rate role is read, best first when several are visible."""

GAZE_COLUMNS = (
    "x",
    "y",
    "valid",
    "x_left",
    "y_left",
    "x_right",
    "y_right",
    "valid_left",
    "valid_right",
    "pupil",
    "pupil_left",
    "pupil_right",
    "pupil_valid_left",
    "pupil_valid_right",
)
"""Every column a gaze reading may name."""

COLUMN_KEYS: dict[str, tuple[str, ...]] = {
    "gaze": GAZE_COLUMNS,
    "gsr": ("gsr",),
    "hr_direct": ("hr",),
    "hr_intervals": ("interval",),
    "hr_ecg": ("signal",),
    "hr_ppg": ("signal",),
    "markers": (),
    "eeg": (),
    "face": (),
}
"""The columns each reading kind reads (single-value kinds read exactly one). ``eeg`` and
``face`` name their columns freely: an EEG column is the electrode's name (``F3 = 2``), a face
column an action unit (``AU12 = "smile"``) or ``success`` / ``confidence``."""

KIND_ROLE: dict[str, str] = {
    "gaze": "gaze",
    "gsr": "gsr",
    "markers": "markers",
    **{k: "hr" for k in HR_KINDS},
    "eeg": "eeg",
    "face": "face",
}
"""The role each reading kind feeds."""

PARAM_KEYS = ("flip_y", "screen", "interval_unit", "valid_threshold", "valid_when", "unit")
"""Every reading parameter (see :class:`RoleReading`)."""


@dataclass(frozen=True)
class RoleReading:
    """How to read one role from a stream's channels.

    Attributes
    ----------
    role
        ``gaze``, ``gsr``, ``hr`` or ``markers``.
    kind
        ``gaze``, ``gsr``, ``markers`` or one of :data:`HR_KINDS`.
    columns
        Field → channel, by label (``str``, case-insensitive) or 0-based index (``int``); the
        fields of each kind are :data:`COLUMN_KEYS`. Gaze: ``x``, ``y`` (one value) or left/right
        pairs ``x_left``/``x_right``/``y_left``/``y_right``, validity ``valid`` (or
        ``valid_left``/``valid_right``), pupils ``pupil`` or ``pupil_left``/``pupil_right``
        (with optional ``pupil_valid_left``/``pupil_valid_right``). GSR: ``gsr``. HR: ``hr``
        (direct), ``interval`` (RR/IBI), ``signal`` (ECG/PPG). Generic single-channel readings
        use index 0, so they read a stream whatever its channel label.
    params
        Extra facts: ``flip_y`` (origin bottom-left), ``screen`` (pixel size for pixel gaze),
        ``interval_unit`` (``"s"`` or ``"ms"``), ``valid_threshold`` (confidence cut-off),
        ``valid_when`` (``"nonzero"`` or ``"zero"``: Tobii-style codes where 0 means valid),
        ``unit`` (EEG: ``"uV"`` (default), ``"mV"`` or ``"V"``; read as µV).
    """

    role: str
    kind: str
    columns: dict[str, str | int] = field(default_factory=dict)
    params: dict = field(default_factory=dict)

    def __hash__(self) -> int:
        return hash((self.role, self.kind, tuple(sorted(self.columns.items()))))


@dataclass(frozen=True)
class PresetStream:
    """One outlet of a device preset: its announced metadata and the roles it can feed."""

    preset: str
    name: str
    type: str
    nominal_srate: float
    channel_labels: tuple[str, ...]
    readings: tuple[RoleReading, ...]
    channel_format: str = "float32"
    manufacturer: str = ""
    unix_epoch: bool = False
    """The device stamps samples in Unix-epoch seconds (Empatica E4 apps do)."""

    def spec(self, source_id: str, uid: str = "", name: str | None = None) -> StreamSpec:
        """A :class:`StreamSpec` for an outlet of this kind (used by the simulator)."""
        return StreamSpec(
            name=name or self.name,
            type=self.type,
            channel_count=len(self.channel_labels),
            nominal_srate=self.nominal_srate,
            channel_format=self.channel_format,
            source_id=source_id,
            channel_labels=self.channel_labels,
            uid=uid,
            manufacturer=self.manufacturer,
        )


EEG_32 = (
    "Fp1", "Fp2", "F7", "F3", "Fz", "F4", "F8", "FC5", "FC1", "FC2", "FC6", "T7", "C3", "Cz",
    "C4", "T8", "TP9", "CP5", "CP1", "CP2", "CP6", "TP10", "P7", "P3", "Pz", "P4", "P8", "PO9",
    "O1", "Oz", "O2", "PO10",
)  # fmt: skip
"""A standard 32-electrode 10-20 cap (the actiCAP 32 layout): the simulated EEG's channels."""

TEN_TWENTY = frozenset(
    f"{row}{pos}".lower()
    for row in (
        "Fp", "AF", "F", "FT", "FC", "T", "C", "TP", "CP", "P", "PO", "O", "I", "N",
    )
    for pos in ("z", *map(str, range(1, 13)))
) | frozenset({"a1", "a2", "m1", "m2", "t3", "t4", "t5", "t6"})  # fmt: skip
"""Electrode names of the 10-20 / 10-10 / 10-5 families (lower case; old names T3-T6 too): an
EEG stream's channels with these labels are read as EEG by type alone."""

OPENFACE_AUS = (
    "AU01", "AU02", "AU04", "AU05", "AU06", "AU07", "AU09", "AU10", "AU12", "AU14", "AU15",
    "AU17", "AU20", "AU23", "AU25", "AU26", "AU45",
)  # fmt: skip
"""The 17 action units OpenFace 2.0 estimates an intensity (0-5) for (``AU01_r`` ...)."""

PYFEAT_AUS = (
    "AU01", "AU02", "AU04", "AU05", "AU06", "AU07", "AU09", "AU10", "AU11", "AU12", "AU14",
    "AU15", "AU17", "AU20", "AU23", "AU24", "AU25", "AU26", "AU28", "AU43",
)  # fmt: skip
"""The 20 action units of py-feat's AU detectors (``Fex.au_columns``; 0-1 per AU)."""

FACE_AUS = tuple(sorted(set(OPENFACE_AUS) | set(PYFEAT_AUS)))
"""Every action unit a trial's face track can hold, in order (a device gives a subset; the
others stay masked)."""


def _gaze_pair(pupil: bool = True, **params) -> RoleReading:
    cols = {
        "x_left": "left_gaze_x",
        "y_left": "left_gaze_y",
        "x_right": "right_gaze_x",
        "y_right": "right_gaze_y",
        "valid_left": "left_validity",
        "valid_right": "right_validity",
    }
    if pupil:
        cols.update(pupil_left="left_pupil_diameter", pupil_right="right_pupil_diameter")
    return RoleReading("gaze", "gaze", cols, params)


PRESETS: dict[str, tuple[PresetStream, ...]] = {
    "gazepoint": (
        PresetStream(
            "gazepoint",
            "GazepointEyeTracker",
            "Gaze",
            60.0,
            ("FPOGX", "FPOGY", "FPOGV", "LPMM", "LPMMV", "RPMM", "RPMMV", "GSR", "HR"),
            (
                RoleReading(
                    "gaze",
                    "gaze",
                    {
                        "x": "FPOGX",
                        "y": "FPOGY",
                        "valid": "FPOGV",
                        "pupil_left": "LPMM",
                        "pupil_valid_left": "LPMMV",
                        "pupil_right": "RPMM",
                        "pupil_valid_right": "RPMMV",
                    },
                ),
                RoleReading("gsr", "gsr", {"gsr": "GSR"}),
                RoleReading("hr", "hr_direct", {"hr": "HR"}),
            ),
            manufacturer="Gazepoint",
        ),
    ),
    "tobii": (
        PresetStream(
            "tobii",
            "Tobii Pro Eyetracker",
            "Gaze",
            1200.0,
            (
                "left_gaze_x",
                "left_gaze_y",
                "right_gaze_x",
                "right_gaze_y",
                "left_pupil_diameter",
                "right_pupil_diameter",
                "left_validity",
                "right_validity",
            ),
            (_gaze_pair(),),
            manufacturer="Tobii",
        ),
    ),
    "pupil-labs": (
        PresetStream(
            "pupil-labs",
            "pupil_capture",
            "Gaze",
            0.0,
            ("confidence", "norm_pos_x", "norm_pos_y", "diameter0_3d", "diameter1_3d"),
            (
                RoleReading(
                    "gaze",
                    "gaze",
                    {
                        "x": "norm_pos_x",
                        "y": "norm_pos_y",
                        "valid": "confidence",
                        "pupil_left": "diameter1_3d",
                        "pupil_right": "diameter0_3d",
                    },
                    {"flip_y": True, "valid_threshold": 0.6},
                ),
            ),
            manufacturer="Pupil Labs",
        ),
    ),
    "eyelink": (
        PresetStream(
            "eyelink",
            "EyeLink",
            "Gaze",
            500.0,
            ("gx_left", "gy_left", "gx_right", "gy_right", "pa_left", "pa_right"),
            (
                RoleReading(
                    "gaze",
                    "gaze",
                    {
                        "x_left": "gx_left",
                        "y_left": "gy_left",
                        "x_right": "gx_right",
                        "y_right": "gy_right",
                        "pupil_left": "pa_left",
                        "pupil_right": "pa_right",
                    },
                    {"screen": (1920, 1080)},
                ),
            ),
            manufacturer="SR Research",
        ),
    ),
    "empatica-e4": (
        PresetStream(
            "empatica-e4",
            "E4_Gsr",
            "GSR",
            4.0,
            ("gsr",),
            (RoleReading("gsr", "gsr", {"gsr": "gsr"}),),
            manufacturer="Empatica",
            unix_epoch=True,
        ),
        PresetStream(
            "empatica-e4",
            "E4_Bvp",
            "BVP",
            64.0,
            ("bvp",),
            (RoleReading("hr", "hr_ppg", {"signal": "bvp"}),),
            manufacturer="Empatica",
            unix_epoch=True,
        ),
        PresetStream(
            "empatica-e4",
            "E4_Ibi",
            "IBI",
            0.0,
            ("ibi",),
            (RoleReading("hr", "hr_intervals", {"interval": "ibi"}, {"interval_unit": "s"}),),
            manufacturer="Empatica",
            unix_epoch=True,
        ),
    ),
    "shimmer": (
        PresetStream(
            "shimmer",
            "Shimmer_GSR",
            "GSR",
            128.0,
            ("GSR_Skin_Conductance",),
            (RoleReading("gsr", "gsr", {"gsr": "GSR_Skin_Conductance"}),),
            manufacturer="Shimmer",
        ),
        PresetStream(
            "shimmer",
            "Shimmer_PPG",
            "PPG",
            128.0,
            ("PPG_A13",),
            (RoleReading("hr", "hr_ppg", {"signal": "PPG_A13"}),),
            manufacturer="Shimmer",
        ),
    ),
    "polar-h10": (
        PresetStream(
            "polar-h10",
            "PolarH10 ECG",
            "ECG",
            130.0,
            ("ECG",),
            (RoleReading("hr", "hr_ecg", {"signal": "ECG"}),),
            manufacturer="Polar",
        ),
        PresetStream(
            "polar-h10",
            "PolarH10 RR",
            "RR",
            0.0,
            ("RR",),
            (RoleReading("hr", "hr_intervals", {"interval": "RR"}, {"interval_unit": "ms"}),),
            manufacturer="Polar",
        ),
    ),
    "eeg-32": (
        PresetStream(
            "eeg-32",
            "EEG",
            "EEG",
            250.0,
            EEG_32,
            (RoleReading("eeg", "eeg", {lab: lab for lab in EEG_32}),),
        ),
    ),
    "openface": (
        PresetStream(
            "openface",
            "OpenFace",
            "FacialAU",
            30.0,
            (*(f"{au}_r" for au in OPENFACE_AUS), "confidence", "success"),
            (
                RoleReading(
                    "face",
                    "face",
                    {
                        **{au: f"{au}_r" for au in OPENFACE_AUS},
                        "confidence": "confidence",
                        "success": "success",
                    },
                    {"valid_threshold": 0.5},
                ),
            ),
            manufacturer="OpenFace",
        ),
    ),
    "py-feat": (
        PresetStream(
            "py-feat",
            "py-feat",
            "FacialAU",
            30.0,
            (*PYFEAT_AUS, "FaceScore"),
            (
                RoleReading(
                    "face",
                    "face",
                    {**{au: au for au in PYFEAT_AUS}, "confidence": "FaceScore"},
                    {"valid_threshold": 0.5},
                ),
            ),
            manufacturer="py-feat",
        ),
    ),
    "psychopy": (
        PresetStream(
            "psychopy",
            "PsychoPyMarkers",
            "Markers",
            0.0,
            ("marker",),
            (RoleReading("markers", "markers", {}),),
            channel_format="string",
            manufacturer="PsychoPy",
        ),
    ),
    "presentation": (
        PresetStream(
            "presentation",
            "Presentation",
            "Markers",
            0.0,
            ("code",),
            (RoleReading("markers", "markers", {}),),
            channel_format="int32",
            manufacturer="Neurobehavioral Systems",
        ),
    ),
}
"""Every built-in preset, by name."""

DEVICE_SETS: dict[str, tuple[str, ...]] = {
    "gazepoint": ("gazepoint", "psychopy"),
    "tobii-e4": ("tobii", "empatica-e4", "psychopy"),
    "pupil-polar": ("pupil-labs", "shimmer", "polar-h10", "psychopy"),
    "lab": ("tobii", "shimmer", "polar-h10", "psychopy"),
    "full": ("tobii", "shimmer", "polar-h10", "eeg-32", "openface", "psychopy"),
}
"""Simulated device combinations: ``gazepoint`` is the EmoEye original (one 60 Hz stream with gaze,
pupil, GSR and HR); ``lab`` is the benchmark set (gaze 1200 Hz, GSR 128 Hz, ECG 130 Hz);
``full`` is ``lab`` plus a 32-channel 250 Hz EEG and an OpenFace action-unit stream at 30 Hz."""


def preset_streams(names: tuple[str, ...] | list[str] | None = None) -> list[PresetStream]:
    """All preset streams of the named presets (every preset when None)."""
    names = list(PRESETS) if names is None else list(names)
    unknown = [n for n in names if n not in PRESETS]
    if unknown:
        raise KeyError(f"unknown preset(s) {unknown}; known: {', '.join(PRESETS)}")
    return [s for n in names for s in PRESETS[n]]
