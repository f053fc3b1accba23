"""Judging a trained agent: the published 30-game protocol, reference scores, video, play.

- ``protocol``: ``evaluate`` (no-op starts, epsilon 0.05, at most 18,000 frames a game),
  ``EvalSummary`` and its JSON file and log row;
- ``scores``: the random and human reference scores, ``human_normalized``;
- ``video``: ``VideoRecorder`` (``.mp4`` or ``.gif``);
- ``play``: ``--play`` and ``--eval`` of the training command (imports Keras; the others don't).
"""
from evaluation.protocol import (EPISODES, EPSILON, MAX_FRAMES, NOOP_MAX, TRAINING_EVAL_EPISODES, Episode,
                                 EvalSummary, evaluate, greedy_policy, log_evaluation, make_eval_env,
                                 native_screen, summary_path, write_new_summary, write_summary)
from evaluation.scores import AGENT57_2020, NATURE_2015, REFERENCE_SCORES, human_normalized, reference_source
from evaluation.video import VIDEO_FPS, VIDEO_SUFFIXES, VideoRecorder, video_format

__all__ = [
    "AGENT57_2020", "EPISODES", "EPSILON", "Episode", "EvalSummary", "MAX_FRAMES", "NATURE_2015", "NOOP_MAX",
    "REFERENCE_SCORES", "TRAINING_EVAL_EPISODES", "VIDEO_FPS", "VIDEO_SUFFIXES", "VideoRecorder", "evaluate",
    "greedy_policy", "human_normalized", "log_evaluation", "make_eval_env", "native_screen", "reference_source",
    "summary_path", "video_format", "write_new_summary", "write_summary",
]
