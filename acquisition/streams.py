"""Stream metadata and sample chunks: the currency every source deals in."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

STRING_FORMATS = ("string",)


@dataclass(frozen=True)
class StreamSpec:
    """What is known of a stream before its samples: LSL's stream info, without pylsl.

    Attributes
    ----------
    name, type
        LSL name and content type (e.g. ``"Gazepoint"``, ``"Gaze"``).
    channel_count
        Number of channels per sample.
    nominal_srate
        Nominal rate in Hz; 0 for irregular streams (markers, RR intervals).
    channel_format
        ``"float32"``, ``"double64"``, ``"int32"``, ``"int16"``, ``"int8"``, ``"int64"`` or ``"string"``.
    source_id
        The device's persistent id; the key a stream is re-found by after a restart.
    channel_labels
        One label per channel when the stream declares them.
    uid
        The id of this particular outlet instance (changes when a device restarts).
    hostname, manufacturer
        Where the stream comes from, as declared.
    """

    name: str
    type: str
    channel_count: int
    nominal_srate: float
    channel_format: str = "float32"
    source_id: str = ""
    channel_labels: tuple[str, ...] = ()
    uid: str = ""
    hostname: str = ""
    manufacturer: str = ""

    @property
    def irregular(self) -> bool:
        """True for streams without a nominal rate."""
        return self.nominal_srate <= 0

    @property
    def is_string(self) -> bool:
        """True for string (marker) streams."""
        return self.channel_format in STRING_FORMATS

    @property
    def key(self) -> str:
        """A stable key: the source id when declared, else name/type."""
        return self.source_id or f"{self.name}/{self.type}"

    def label_index(self, label: str) -> int:
        """Index of a channel by label (case-insensitive); raises KeyError naming the labels."""
        lowered = [lab.lower() for lab in self.channel_labels]
        try:
            return lowered.index(label.lower())
        except ValueError:
            raise KeyError(
                f"stream {self.name!r} has no channel {label!r} (channels: "
                f"{', '.join(self.channel_labels) or 'unlabelled'})"
            ) from None

    def describe(self) -> str:
        """One line for humans (long names and ids shortened, see :func:`shorten`)."""
        rate = "irregular" if self.irregular else f"{self.nominal_srate:g} Hz"
        return (
            f"{shorten(self.name)!r} type={shorten(self.type)!r} {self.channel_count}ch "
            f"{shorten(self.channel_format)} {rate} source_id={shorten(self.source_id)!r}"
        )


def shorten(text: str, limit: int = 60) -> str:
    """``text`` for display: at most ``limit`` characters, else cut with its full length noted.

    Names and ids come from devices and recorded files; a damaged or careless header can make
    one a megabyte long, and printing it whole would bury every other line of a report.

    Parameters
    ----------
    text
        A stream name, type or source id.
    limit
        Characters kept.

    Returns
    -------
    str
        ``text`` itself when short enough, else its first ``limit`` characters followed by
        ``"...(N chars)"``.
    """
    if len(text) <= limit:
        return text
    return f"{text[:limit]}...({len(text)} chars)"


@dataclass
class Chunk:
    """Consecutive samples of one stream.

    ``timestamps`` is float64 of shape (n,), on the receiving machine's LSL clock;
    ``values`` is (n, channel_count): float for numeric streams, object (str) for string streams.
    """

    stream: StreamSpec
    timestamps: np.ndarray
    values: np.ndarray
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.timestamps)
