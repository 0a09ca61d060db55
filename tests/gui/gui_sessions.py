"""Sessions the dashboard tests drive: a simulated experiment fed through a real Acquisition
offline (fast, no LSL), and predictions made up from each trial (flagging every third)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from acquisition.aligner import TrialEvent
from acquisition.config import AcquisitionConfig
from acquisition.core import Acquisition
from acquisition.lsl.binding import bind_roles
from acquisition.lsl.health import StreamHealth, StreamState
from acquisition.sim.simulator import Simulation
from acquisition.stimulus_catalogue import default_catalogue
from acquisition.trials.types import TrialSpec
from inference.prediction import Prediction, PredictionStore


def fake_prediction(trial, flagged: bool = False) -> Prediction:
    """A peaked distribution whose mode depends on the stimulus (what a model would return)."""
    rng = np.random.default_rng(abs(hash(trial.trial_id)) % 2**32)
    a = rng.dirichlet(np.ones(7) * 0.6)
    v = rng.dirichlet(np.ones(7) * 0.6)
    return Prediction(
        trial_id=trial.trial_id,
        onset=trial.onset,
        stimulus_id=trial.stimulus_id,
        arousal_probs=a,
        valence_probs=v,
        quality=trial.quality.to_dict(),
        flagged=flagged,
        flag_reason="gaze valid 40 % < 60 %" if flagged else "",
        mode=trial.mode,
    )


@dataclass
class OfflineLive:
    """LiveAcquisition's face (core, health, plan) over an offline source."""

    core: Acquisition
    plan: object
    health: dict[str, StreamHealth] = field(default_factory=dict)


class OfflineSession:
    """A session fed on demand: ``advance(seconds)`` pushes that much data time through the core,
    cuts trials and (optionally) adds a prediction per trial to the store."""

    def __init__(
        self,
        sim: Simulation,
        config: AcquisitionConfig | None = None,
        predict: bool = True,
        flag_every: int = 3,
        drop_streams: tuple[str, ...] = (),
    ) -> None:
        self.sim = sim
        config = config or AcquisitionConfig(trial=TrialSpec(grace=1.0))
        streams = [s for s in sim.streams if s.type not in drop_streams]
        plan = bind_roles(streams, config.rules)
        core = Acquisition(plan, config, strict=False)
        health = {}
        for key, spec in core.streams.items():
            roles = [r for r, c in plan.roles.items() if c.spec.key == key]
            health[key] = StreamHealth(key, spec.name, roles, spec.nominal_srate)
        self.live = OfflineLive(core, plan, health)
        self.store = PredictionStore()
        self.catalogue = default_catalogue()
        self.predict = predict
        self.flag_every = flag_every
        self._blocks = sim.iter_blocks(0.1)
        self.t = sim.start_time
        self.trials = []

    def advance(self, seconds: float) -> None:
        """Feed ``seconds`` more data time."""
        core, end = self.live.core, self.t + seconds
        while self.t < end:
            block = next(self._blocks, None)
            if block is None:
                break
            for chunk in block.chunks:
                core.write(chunk)
                h = self.live.health.get(chunk.stream.key)
                if h is not None:
                    h.samples += len(chunk)
                    h.state = StreamState.OK
                    h.measured_srate = h.nominal_srate
                    h.lag = 0.004
            for buffer in core.buffers.values():
                buffer.watermark = max(buffer.watermark, block.t_end)
            self.t = block.t_end
            for event in core.poll(block.t_end):
                if isinstance(event, TrialEvent) and event.trial is not None:
                    self.trials.append(event.trial)
                    if self.predict:
                        n = len(self.trials)
                        flagged = bool(self.flag_every) and n % self.flag_every == 0
                        self.store.add(fake_prediction(event.trial, flagged))
