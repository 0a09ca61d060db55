"""``emoeye present``: a full-screen picture presenter with SAM ratings that sends the default
onset and rating markers over LSL and logs one CSV row per trial."""

from gui.presenter.plan import PresenterError, TrialLog, list_pictures, plan_trials
from gui.presenter.window import PresenterConfig, PresenterWindow

__all__ = [
    "PresenterConfig",
    "PresenterError",
    "PresenterWindow",
    "TrialLog",
    "list_pictures",
    "plan_trials",
]
