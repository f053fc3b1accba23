"""preprocess, FrameStack, clip_reward and each wrapper, on synthetic frames and a fake ALE env."""
import pickle

import gymnasium as gym
import numpy as np
import pytest

from preprocessing import FrameStack, clip_reward, preprocess
from preprocessing.wrappers import (
    ActionRepeat,
    FireReset,
    IdlePenalty,
    LifeLossFlag,
    NoopStarts,
    PreprocessFrame,
)

NOOP, FIRE, RIGHT, LEFT = range(4)


class FakeAle(gym.Env):
    """Raw frames ``uint8[210,160]`` scripted by frame number (1 for the first step after reset).

    Frame n is ``200 - n`` on the left half when n is odd, on the right half when n is even,
    zero elsewhere, so earlier frames are brighter and a max-pool shows which frames it used.
    ``rewards[n]`` is frame n's reward (or ``reward_every_frame``); a life is lost on each
    frame in ``life_loss_frames``; the game ends on ``end_frame``.
    """

    def __init__(self, rewards=None, reward_every_frame=0, life_loss_frames=(), end_frame=None):
        self.observation_space = gym.spaces.Box(0, 255, (210, 160), np.uint8)
        self.action_space = gym.spaces.Discrete(4)
        self.rewards, self.reward_every_frame = rewards or {}, reward_every_frame
        self.life_loss_frames, self.end_frame = set(life_loss_frames), end_frame
        self.frame_number, self.lives, self.actions = 0, 3, []

    def get_action_meanings(self):
        return ["NOOP", "FIRE", "RIGHT", "LEFT"]

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.frame_number, self.lives, self.actions = 0, 3, []
        return self._frame(), self._info()

    def step(self, action):
        self.frame_number += 1
        self.actions.append(int(action))
        self.lives -= self.frame_number in self.life_loss_frames
        reward = self.rewards.get(self.frame_number, self.reward_every_frame)
        terminated = self.frame_number == self.end_frame
        return self._frame(), reward, terminated, False, self._info()

    def _frame(self):
        frame = np.zeros((210, 160), np.uint8)
        half = slice(0, 80) if self.frame_number % 2 else slice(80, 160)
        frame[:, half] = 200 - self.frame_number
        return frame

    def _info(self):
        return {"lives": self.lives, "episode_frame_number": self.frame_number}


# preprocess -----------------------------------------------------------------------------------

def test_preprocess_gives_84x84_uint8_from_rgb_and_from_gray():
    rng = np.random.default_rng(0)
    for frame in (rng.integers(0, 256, (210, 160, 3), np.uint8), rng.integers(0, 256, (210, 160), np.uint8)):
        out = preprocess(frame)
        assert out.shape == (84, 84) and out.dtype == np.uint8


def test_preprocess_keeps_a_constant_image_constant():
    assert np.all(preprocess(np.full((210, 160), 137, np.uint8)) == 137)
    assert np.all(preprocess(np.full((210, 160, 3), 137, np.uint8)) == 137)


def test_preprocess_averages_the_area_each_output_pixel_covers():
    rows = np.zeros((210, 160), np.uint8)
    rows[0], rows[2] = 250, 250
    out = preprocess(rows)
    # Output row 0 covers input rows [0, 2.5): 250 * (1 + 0.5) / 2.5; row 1 covers [2.5, 5).
    assert np.all(out[0] == 150) and np.all(out[1] == 50) and np.all(out[2:] == 0)
    columns = np.zeros((210, 160), np.uint8)
    columns[:, 0] = 210
    out = preprocess(columns)
    # Output column 0 covers input columns [0, 160/84): 210 / (160/84) = 110.25.
    assert np.all(out[:, 0] == 110) and np.all(out[:, 1:] == 0)


def test_preprocess_reads_rgb_in_rgb_order_with_luma_weights():
    red = np.zeros((210, 160, 3), np.uint8)
    red[..., 0] = 255
    assert np.all(preprocess(red) == 76)  # round(0.299 * 255); BGR order would give 29


def test_preprocess_rejects_a_frame_that_is_no_image():
    with pytest.raises(ValueError):
        preprocess(np.zeros(100, np.uint8))


# FrameStack -----------------------------------------------------------------------------------

def frame_of(value):
    return np.full((84, 84), value, np.uint8)


def test_frame_stack_starts_with_zeros_and_keeps_the_newest_last():
    stack = FrameStack(history=4)
    state = stack.reset(frame_of(1))
    assert state.shape == (84, 84, 4) and state.dtype == np.uint8
    assert list(state[0, 0]) == [0, 0, 0, 1]
    for value in (2, 3, 4, 5):
        state = stack.append(frame_of(value))
    assert list(state[0, 0]) == [2, 3, 4, 5]
    assert list(stack.reset(frame_of(9))[0, 0]) == [0, 0, 0, 9]


def test_frame_stack_returns_arrays_the_caller_may_keep():
    stack = FrameStack()
    first = stack.reset(frame_of(1))
    second = stack.append(frame_of(2))
    first[...] = 77
    assert list(second[0, 0]) == [0, 0, 1, 2]
    assert list(stack.append(frame_of(3))[0, 0]) == [0, 1, 2, 3]
    assert list(second[0, 0]) == [0, 0, 1, 2]


def test_frame_stack_of_one_frame_keeps_the_channel_axis():
    stack = FrameStack(history=1)
    assert stack.reset(frame_of(1)).shape == (84, 84, 1)
    assert stack.append(frame_of(2))[0, 0, 0] == 2


def test_frame_stack_pickled_by_an_earlier_version_loads_and_goes_on():
    # Checkpoints written before the frames were kept apart hold one channels-last array.
    earlier = FrameStack.__new__(FrameStack)
    earlier.__dict__.update(history=4, _frames=np.stack([frame_of(v) for v in (0, 1, 2, 3)], axis=-1))
    stack = pickle.loads(pickle.dumps(earlier))
    assert list(stack.append(frame_of(4))[0, 0]) == [1, 2, 3, 4]
    assert list(pickle.loads(pickle.dumps(stack)).append(frame_of(5))[0, 0]) == [2, 3, 4, 5]


def test_clip_reward_clips_to_plus_minus_one():
    assert [clip_reward(r) for r in (4.0, -3.0, 0.0, 0.5, 1.0, -1.0)] == [1.0, -1.0, 0.0, 0.5, 1.0, -1.0]


# ActionRepeat ---------------------------------------------------------------------------------

def test_action_repeat_sums_the_reward_of_every_repeated_frame():
    env = ActionRepeat(FakeAle(reward_every_frame=1), frames_per_action=4)
    env.reset()
    _, reward, *_ = env.step(RIGHT)
    assert reward == 4.0 and isinstance(reward, float)


def test_action_repeat_keeps_a_point_scored_on_an_early_frame():
    env = ActionRepeat(FakeAle(rewards={2: 1, 7: -1}), frames_per_action=4)
    env.reset()
    assert env.step(NOOP)[1] == 1.0
    assert env.step(NOOP)[1] == -1.0


def test_action_repeat_repeats_the_action_and_counts_frames_exactly():
    fake = FakeAle()
    env = ActionRepeat(fake, frames_per_action=4)
    env.reset()
    infos = [env.step(action)[4] for action in (LEFT, RIGHT, FIRE)]
    assert [info["episode_frame_number"] for info in infos] == [4, 8, 12]
    assert fake.actions == [LEFT] * 4 + [RIGHT] * 4 + [FIRE] * 4


def test_action_repeat_max_pools_the_last_two_raw_frames_only():
    env = ActionRepeat(FakeAle(), frames_per_action=4)
    env.reset()
    frame, *_ = env.step(NOOP)
    # Frames 1..4: odd frames light the left half (199, 197), even the right (198, 196).
    assert np.all(frame[:, :80] == 197) and np.all(frame[:, 80:] == 196)


def test_action_repeat_stops_at_game_over_and_pools_this_steps_frames():
    env = ActionRepeat(FakeAle(reward_every_frame=1, end_frame=6), frames_per_action=4)
    env.reset()
    env.step(NOOP)
    frame, reward, terminated, _, info = env.step(NOOP)
    assert terminated and reward == 2.0 and info["episode_frame_number"] == 6
    assert np.all(frame[:, :80] == 195) and np.all(frame[:, 80:] == 194)


def test_action_repeat_of_one_frame_returns_that_frame():
    env = ActionRepeat(FakeAle(), frames_per_action=1)
    env.reset()
    frame, *_ = env.step(NOOP)
    assert np.all(frame[:, :80] == 199) and np.all(frame[:, 80:] == 0)


# NoopStarts -----------------------------------------------------------------------------------

def noop_count(seed, noop_max=30):
    fake = FakeAle()
    NoopStarts(fake, noop_max).reset(seed=seed)
    assert set(fake.actions) == {NOOP}
    return len(fake.actions)


def test_noop_starts_draw_1_to_noop_max_noops_from_the_env_seed():
    counts = [noop_count(seed) for seed in range(40)]
    assert all(1 <= count <= 30 for count in counts) and len(set(counts)) > 5
    np.random.seed(1)
    first = noop_count(seed=123)
    np.random.seed(2)
    assert noop_count(seed=123) == first


# FireReset and LifeLossFlag -------------------------------------------------------------------

def test_fire_reset_presses_fire_after_reset():
    fake = FakeAle()
    frame, info = FireReset(ActionRepeat(fake, 4)).reset()
    assert fake.actions == [FIRE] * 4 and info["episode_frame_number"] == 4


def test_fire_reset_leaves_a_life_lost_to_the_agent_by_default():
    fake = FakeAle(life_loss_frames={7})
    env = LifeLossFlag(FireReset(ActionRepeat(fake, 4)))
    env.reset()
    _, _, _, _, info = env.step(RIGHT)
    assert fake.actions == [FIRE] * 4 + [RIGHT] * 4
    assert info["life_lost"] and info["episode_frame_number"] == 8


def test_fire_after_a_life_lost_adds_its_reward_when_asked_for():
    fake = FakeAle(life_loss_frames={7}, rewards={10: 3})
    env = LifeLossFlag(FireReset(ActionRepeat(fake, 4), after_life_loss=True))
    env.reset()
    _, reward, terminated, _, info = env.step(RIGHT)
    assert fake.actions == [FIRE] * 4 + [RIGHT] * 4 + [FIRE] * 4
    assert reward == 3.0 and not terminated
    assert info["life_lost"] and info["lives"] == 2 and info["episode_frame_number"] == 12
    _, _, _, _, info = env.step(LEFT)
    assert not info["life_lost"] and info["episode_frame_number"] == 16


def test_life_loss_flag_marks_only_the_step_that_lost_a_life_and_never_ends_the_episode():
    env = LifeLossFlag(ActionRepeat(FakeAle(life_loss_frames={6, 14}), 4))
    _, info = env.reset()
    flags, ends = [info["life_lost"]], []
    for _ in range(5):
        _, _, terminated, truncated, info = env.step(NOOP)
        flags.append(info["life_lost"])
        ends.append(terminated or truncated)
    assert flags == [False, False, True, False, True, False] and not any(ends)


def test_life_loss_flag_can_be_turned_off():
    env = LifeLossFlag(ActionRepeat(FakeAle(life_loss_frames={2}), 4), enabled=False)
    env.reset()
    assert env.step(NOOP)[4]["life_lost"] is False


# IdlePenalty ----------------------------------------------------------------------------------

def penalties(env, actions):
    return [env.step(action)[4]["idle_penalty"] for action in actions]


def test_idle_penalty_every_30_idle_decisions_until_the_first_move():
    env = IdlePenalty(ActionRepeat(FakeAle(reward_every_frame=0), 1))
    assert env.reset()[1]["idle_penalty"] == 0.0
    got = penalties(env, [NOOP, FIRE] * 30 + [RIGHT] + [NOOP] * 40)
    assert [i for i, p in enumerate(got) if p] == [29, 59] and set(got) == {0.0, -1.0}


def test_idle_penalty_restarts_with_each_life_and_leaves_the_reward_alone():
    env = IdlePenalty(ActionRepeat(FakeAle(life_loss_frames={2}, reward_every_frame=1), 1))
    env.reset()
    got = penalties(env, [LEFT, LEFT] + [NOOP] * 30)
    assert [i for i, p in enumerate(got) if p] == [31]
    assert env.step(NOOP)[1] == 1.0


def test_idle_penalty_of_zero_keeps_the_key():
    env = IdlePenalty(ActionRepeat(FakeAle(), 1), penalty=0.0)
    env.reset()
    assert set(penalties(env, [NOOP] * 31)) == {0.0}


def test_preprocess_frame_wrapper_observes_84x84():
    env = PreprocessFrame(ActionRepeat(FakeAle(), 4))
    frame, _ = env.reset()
    assert frame.shape == (84, 84) and env.observation_space.shape == (84, 84)
    assert env.observation_space.contains(env.step(NOOP)[0])
