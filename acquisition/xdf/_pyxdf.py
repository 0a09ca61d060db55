"""The few pyxdf routines the reader needs: clock synchronisation and the pylsl#67 check.

Carried from pyxdf 1.17.5 (``pyxdf/pyxdf.py``, https://github.com/xdf-modules/pyxdf) so that the
reader's timestamps do not change when pyxdf renames or rewrites its private functions (the
reader used five of them). The arithmetic is pyxdf's, line for line, so timestamps stay equal to
``pyxdf.load_xdf``'s (the conformance tests in tests/xdf/test_xdf_conformance.py compare them).
What changed: the routines take plain arrays instead of pyxdf's ``StreamData``, correct the
timestamps in place block by block (bounded memory; the same operations per element), and return
their warnings instead of logging them, so that they join the file's other warnings. For start-up
time, ``_robust_fit`` stops at the fixed point of its iteration (bit for bit the same result), and
medians avoid ``np.median`` (its first call imports numpy.ma).

pyxdf's licence:

    BSD 2-Clause License

    Copyright (c) 2015-2024, Syntrogi Inc. dba Intheon
    Copyright (c) 2018-2024, Chad Boulay
    Copyright (c) 2018-2024, Tristan Stenner
    Copyright (c) 2018-2024, Clemens Brunner

    Redistribution and use in source and binary forms, with or without
    modification, are permitted provided that the following conditions are met:

    * Redistributions of source code must retain the above copyright notice, this
      list of conditions and the following disclaimer.

    * Redistributions in binary form must reproduce the above copyright notice,
      this list of conditions and the following disclaimer in the documentation
      and/or other materials provided with the distribution.

    THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS IS"
    AND ANY EXPRESS OR IMPLIED WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE
    IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS FOR A PARTICULAR PURPOSE ARE
    DISCLAIMED. IN NO EVENT SHALL THE COPYRIGHT HOLDER OR CONTRIBUTORS BE LIABLE
    FOR ANY DIRECT, INDIRECT, INCIDENTAL, SPECIAL, EXEMPLARY, OR CONSEQUENTIAL
    DAMAGES (INCLUDING, BUT NOT LIMITED TO, PROCUREMENT OF SUBSTITUTE GOODS OR
    SERVICES; LOSS OF USE, DATA, OR PROFITS; OR BUSINESS INTERRUPTION) HOWEVER
    CAUSED AND ON ANY THEORY OF LIABILITY, WHETHER IN CONTRACT, STRICT LIABILITY,
    OR TORT (INCLUDING NEGLIGENCE OR OTHERWISE) ARISING IN ANY WAY OUT OF THE USE
    OF THIS SOFTWARE, EVEN IF ADVISED OF THE POSSIBILITY OF SUCH DAMAGE.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np

PYXDF_VERSION = "1.17.5"
"""The pyxdf release these routines were taken from."""

_BLOCK = 1 << 16
"""Samples corrected per step (pyxdf does a whole stream at once: one temporary its size)."""


def can_drop_samples(header: ET.Element) -> bool:
    """``desc/synchronization/can_drop_samples`` is ``true`` (pyxdf's ``_stream_can_drop_samples``).

    Such streams (video, HMD frames) are not dejittered: a straight line through them would
    compress the dropped frames' gaps.
    """
    node = header.find("desc/synchronization/can_drop_samples")
    return node is not None and str(node.text).strip().lower() == "true"


def _find_segment_indices(b_breaks: np.ndarray) -> list[tuple[int, int]]:
    """Inclusive (start, end) index ranges between the breaks (pyxdf's)."""
    break_inds = np.where(b_breaks)[0]
    start_idx = np.hstack(([0], break_inds + 1))
    end_idx = np.hstack((break_inds, len(b_breaks)))
    return list(zip(start_idx.tolist(), end_idx.tolist(), strict=True))


def median(x) -> float:
    """``np.median`` of a 1-D array, without the numpy.ma import (25 ms) of its first call.

    The same partition and mean of the two middle values, so the same float; NaN when any is.
    """
    x = np.asarray(x, dtype=float).ravel()
    n = len(x)
    if n == 0 or np.isnan(x).any():
        return float("nan")
    lo, hi = (n - 1) // 2, n // 2
    part = np.partition(x, [lo, hi])
    return float((part[lo] + part[hi]) / 2)


def _segment_clock_diff(diff: np.ndarray, thresh_stds: float, thresh_secs: float) -> np.ndarray:
    mid = median(diff)
    diffs_shift = diff - mid
    diffs_shift_abs = np.abs(diffs_shift)
    mad = median(diffs_shift_abs) + np.finfo(float).eps  # median absolute deviation
    diffs_std = diffs_shift / mad
    cond1 = np.abs(diffs_std) > thresh_stds
    cond2 = diffs_shift_abs > thresh_secs
    return cond1 & cond2


def _detect_corrupted_clock_offset(
    clock_times, clock_values, time_thresh: float = 10.0, value_thresh: float = 10.0
) -> bool:
    """True when the last clock offset is statistically anomalous (pylsl#67)."""
    times = np.asarray(clock_times)
    values = np.asarray(clock_values)
    if len(times) < 3:
        return False
    intervals = np.diff(times)
    median_interval = median(intervals[:-1])
    last_interval = np.abs(intervals[-1])
    if median_interval > 0:
        time_ratio = last_interval / median_interval
    else:
        time_ratio = np.inf if last_interval > 0 else 1.0
    median_val = median(values[:-1])
    mad = median(np.abs(values[:-1] - median_val))
    if mad > np.finfo(float).eps:
        value_zscore = np.abs(values[-1] - median_val) / (1.4826 * mad)
    else:
        value_zscore = 0.0
    return bool(time_ratio > time_thresh or value_zscore > value_thresh)


def corrupted_offset_tail(
    n_samples: int, footer_count: int | None, clock_times, clock_values
) -> bool:
    """pyxdf's ``_truncate_corrupted_offsets`` test for one stream (pylsl#67, liblsl#246).

    True when the stream holds more samples than its footer declares *and* its last clock offset
    is anomalous: the caller then drops the samples past ``footer_count`` and the last offset.
    Either sign alone is legitimate (late samples, a clock reset) and keeps everything.
    """
    if footer_count is None or n_samples <= footer_count:
        return False
    if len(clock_times) < 3:
        return False
    return _detect_corrupted_clock_offset(clock_times, clock_values)


def _detect_clock_resets(
    clock_times,
    clock_values,
    time_thresh_stds,
    time_thresh_secs,
    value_thresh_stds,
    value_thresh_secs,
) -> list[tuple[int, int]]:
    time_diff = np.diff(clock_times)
    value_diff = np.diff(clock_values)
    decreasing = time_diff < 0  # always segment at negative time intervals
    time_glitch = _segment_clock_diff(time_diff, time_thresh_stds, time_thresh_secs)
    value_glitch = _segment_clock_diff(value_diff, value_thresh_stds, value_thresh_secs)
    resets_at = decreasing | time_glitch & value_glitch
    return _find_segment_indices(resets_at)


def _correct(ts: np.ndarray, c0: float, c1: float) -> None:
    """``ts += c0 + c1 * ts`` in place, block by block (the same arithmetic per element)."""
    for a in range(0, len(ts), _BLOCK):
        part = ts[a : a + _BLOCK]
        part += c0 + (c1 * part)


def clock_sync(
    ts: np.ndarray,
    clock_times: list[float],
    clock_values: list[float],
    handle_clock_resets: bool = True,
    reset_threshold_stds: float = 5,
    reset_threshold_seconds: float = 5,
    reset_threshold_offset_stds: float = 10,
    reset_threshold_offset_seconds: float = 1,
    winsor_threshold: float = 0.0001,
    cache: dict | None = None,
) -> tuple[list[tuple[int, int]], list[str]]:
    """pyxdf's ``_clock_sync`` for one stream: correct ``ts`` in place.

    Parameters
    ----------
    ts
        The stream's timestamps in file order (float64, modified).
    clock_times, clock_values
        Its clock offset measurements.
    handle_clock_resets
        Fit each clock segment between detected resets separately.
    cache
        Fits by clock offsets, shared between the streams of one file: streams recorded with
        the same offsets (one writer measuring once for all) are fitted once.

    Returns
    -------
    clock_segments, warnings
        Inclusive index ranges per clock segment (empty when nothing was done) and pyxdf's
        warnings, as sentences without the stream's name.
    """
    warnings: list[str] = []
    segments: list[tuple[int, int]] = []
    if not len(ts) or not clock_times:
        return segments, warnings
    key = (tuple(clock_times), tuple(clock_values), handle_clock_resets)
    if cache is not None and key in cache:
        ranges, coef, fit_warnings = cache[key]
    else:
        ranges, coef, fit_warnings = _fit(
            clock_times,
            clock_values,
            handle_clock_resets,
            reset_threshold_stds,
            reset_threshold_seconds,
            reset_threshold_offset_stds,
            reset_threshold_offset_seconds,
            winsor_threshold,
        )
        if cache is not None:
            cache[key] = (ranges, coef, fit_warnings)
    warnings.extend(fit_warnings)
    if len(ranges) == 1:
        _correct(ts, coef[0][0], coef[0][1])
        segments.append((0, len(ts) - 1))
        return segments, warnings
    # Assumes time-stamps are monotonically increasing (pyxdf's words).
    ts_start = 0
    for coef_i, range_i in zip(coef, ranges, strict=True):
        stop = range_i[1] + 1
        if stop < len(clock_times):
            # Break at the first time-stamp that is closer to the next clock-time than the end
            # of the current clock segment.
            current_end_t = clock_times[range_i[1]]
            next_start_t = clock_times[stop]
            cond = np.less(
                np.abs(ts[ts_start:] - current_end_t), np.abs(ts[ts_start:] - next_start_t)
            )
            ts_stop = ts_start + len(cond) if all(cond) else ts_start + np.argmin(cond).item()
        else:
            ts_stop = len(ts)
        if ts_start == ts_stop:
            warnings.append(f"no samples in clock offsets {range_i}, skipping")
        else:
            segments.append((ts_start, ts_stop - 1))
            _correct(ts[ts_start:ts_stop], coef_i[0], coef_i[1])
            ts_start = ts_stop
    return segments, warnings


def _fit(
    clock_times,
    clock_values,
    handle_clock_resets,
    reset_threshold_stds,
    reset_threshold_seconds,
    reset_threshold_offset_stds,
    reset_threshold_offset_seconds,
    winsor_threshold,
):
    """pyxdf's reset detection and robust fit per clock segment: (ranges, coefficients, warnings)."""
    warnings: list[str] = []
    if handle_clock_resets and len(clock_times) > 1:
        ranges = _detect_clock_resets(
            clock_times,
            clock_values,
            reset_threshold_stds,
            reset_threshold_seconds,
            reset_threshold_offset_stds,
            reset_threshold_offset_seconds,
        )
    else:
        ranges = [(0, len(clock_times) - 1)]
    coef = []
    for range_i in ranges:
        if range_i[0] != range_i[1]:
            start, stop = range_i[0], range_i[1] + 1
            X = np.column_stack(
                [np.ones(stop - start), np.array(clock_times[start:stop]) / winsor_threshold]
            )
            y = np.array(clock_values[start:stop]) / winsor_threshold
            try:
                _coefs = _robust_fit(X, y)
                _coefs[0] *= winsor_threshold
            except np.linalg.LinAlgError:
                warnings.append(f"clock offsets {range_i} cannot be used for synchronization")
                _coefs = [0, 0]
            coef.append(_coefs)
        else:
            coef.append((clock_values[range_i[0]], 0))  # intercept for single-offset segments
    return ranges, coef, warnings


def _robust_fit(A: np.ndarray, y: np.ndarray, rho: float = 1, iters: int = 1000) -> np.ndarray:
    """Robust linear regression with the Huber loss via ADMM (pyxdf's ``_robust_fit``).

    Based on the ADMM Matlab codes at
    http://www.stanford.edu/~boyd/papers/distr_opt_stat_learning_admm.html
    """
    A = np.copy(A)
    offset = np.min(A[:, 1])
    A[:, 1] -= offset
    Aty = np.dot(A.T, y)
    L = np.linalg.cholesky(np.dot(A.T, A))
    U = L.T
    z = np.zeros_like(y)
    u = z
    x = z
    d_inv = np.zeros_like(y)
    for _ in range(iters):
        x = np.linalg.solve(U, (np.linalg.solve(L, Aty + np.dot(A.T, z - u))))
        d = np.dot(A, x) - y + u
        d_inv[:] = 0
        np.divide(1, d, out=d_inv, where=d != 0)
        tmp = np.maximum(0, (1 - (1 + 1 / rho) * np.abs(d_inv)))
        z_next = rho / (1 + rho) * d + 1 / (1 + rho) * tmp * d
        u_next = d - z_next
        # Each iterate is a function of (z, u) alone: once they repeat bit for bit, the
        # remaining iterations would return this same x. Clock offsets reach that fixed point
        # after ~50 of pyxdf's 1000 iterations (most of `emoeye info`'s time otherwise).
        if np.array_equal(z_next, z) and np.array_equal(u_next, u):
            break
        z, u = z_next, u_next
    x[0] -= x[1] * offset
    return x
