"""make_env and resolve_env_id on the real ROMs bundled with ale-py."""
import cv2
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from common.errors import UserError
from preprocessing import EnvIdError, make_env, preprocess, resolve_env_id

GAMES = ["Pong-v0", "Breakout-v0", "ALE/Breakout-v5"]


def play(env, steps, seed, action_seed=None):
    """Frames, rewards and infos of ``steps`` random actions, from ``reset(seed=seed)``."""
    frame, info = env.reset(seed=seed)
    frames, rewards, infos = [frame], [], [info]
    action_seed = seed if action_seed is None else action_seed
    actions = np.random.default_rng(action_seed).integers(0, env.action_space.n, steps)
    for action in actions:
        frame, reward, terminated, truncated, info = env.step(action)
        frames.append(frame), rewards.append(reward), infos.append(info)
        if terminated or truncated:
            break
    return frames, rewards, infos


@pytest.mark.parametrize("env_id", GAMES)
def test_frames_are_84x84_uint8_and_info_has_the_keys(env_id):
    env = make_env(env_id, seed=0)
    assert env.observation_space.shape == (84, 84) and env.observation_space.dtype == np.uint8
    frames, rewards, infos = play(env, 20, seed=0)
    assert all(f.shape == (84, 84) and f.dtype == np.uint8 for f in frames)
    assert all(isinstance(r, float) for r in rewards)
    assert all({"lives", "episode_frame_number", "life_lost", "idle_penalty"} <= set(i) for i in infos)


@pytest.mark.parametrize("env_id", GAMES)
def test_emulator_runs_one_frame_per_act_whatever_the_id(env_id):
    env = make_env(env_id)
    assert env.spec.kwargs["frameskip"] == 1


@pytest.mark.parametrize("env_id", GAMES)
def test_one_step_advances_the_frame_counter_by_4(env_id):
    env = make_env(env_id, seed=1)
    _, _, infos = play(env, 300, seed=1)
    advance = np.diff([info["episode_frame_number"] for info in infos])
    assert set(advance[:-1]) == {4} and 1 <= advance[-1] <= 4  # a game may end mid-repeat


@pytest.mark.parametrize("fire_after_life_loss, lost_advance", [(False, {4}), (True, {8})])
def test_a_life_lost_in_breakout_costs_a_fire_step_only_when_asked(fire_after_life_loss, lost_advance):
    env = make_env("Breakout-v0", seed=2, fire_after_life_loss=fire_after_life_loss)
    _, _, infos = play(env, 90, seed=2)
    assert infos[-1]["lives"] in (1, 2, 3, 4)
    advance = np.diff([info["episode_frame_number"] for info in infos])
    lost = np.array([info["life_lost"] for info in infos[1:]])
    assert lost.any() and set(advance[lost]) == lost_advance and set(advance[~lost]) == {4}


def test_sticky_actions_come_from_the_id_unless_given():
    def sticky(env):
        return env.unwrapped.ale.getFloat("repeat_action_probability")

    assert sticky(make_env("Pong-v0")) == pytest.approx(0.25)
    assert sticky(make_env("PongNoFrameskip-v4")) == 0.0
    assert sticky(make_env("Pong-v0", repeat_action_probability=0.0)) == 0.0


@pytest.mark.parametrize("env_id", ["Pong-v0", "Breakout-v0"])
def test_same_seed_gives_the_same_frames_step_by_step(env_id):
    first, rewards, _ = play(make_env(env_id, seed=7), 150, seed=7)
    again, rewards_again, _ = play(make_env(env_id, seed=7), 150, seed=7)
    other, _, _ = play(make_env(env_id, seed=8), 150, seed=8, action_seed=7)
    assert len(first) == len(again) and rewards == rewards_again
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))


def test_make_env_seed_alone_makes_the_following_episode_reproducible():
    def unseeded_reset_frames(seed):
        env = make_env("Breakout-v0", seed=seed)
        frames = [env.reset()[0]]
        frames += [env.step(env.action_space.sample())[0] for _ in range(60)]
        return frames

    assert all(np.array_equal(a, b) for a, b in zip(unseeded_reset_frames(3), unseeded_reset_frames(3)))


@pytest.mark.filterwarnings("ignore:.*different from the unwrapped version")
def test_unwrapped_and_wrapped_envs_pass_gymnasiums_check_env():
    env = make_env("Breakout-v0", seed=0)
    check_env(env.unwrapped, skip_render_check=True)
    check_env(env, skip_render_check=True)


def test_render_gives_the_native_rgb_screen_and_the_ale_gray_matches_it():
    env = make_env("Breakout-v0", seed=0, render_mode="rgb_array")
    env.reset(seed=0)
    for _ in range(30):
        env.step(env.action_space.sample())
    rgb, ale = env.render(), env.unwrapped.ale
    assert rgb.shape == (210, 160, 3) and rgb.dtype == np.uint8
    gray = ale.getScreenGrayscale()
    assert np.array_equal(gray, cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    assert np.array_equal(preprocess(rgb), preprocess(gray))


def test_a_random_pong_v0_episode_loses_exactly_21_points():
    env = make_env("Pong-v0", seed=5)
    _, rewards, infos = play(env, 5000, seed=5)
    points_lost = -sum(r for r in rewards if r < 0)
    points_won = sum(r for r in rewards if r > 0)
    assert points_lost == 21 and points_won < 21
    assert len(rewards) < 5000 and infos[-1]["lives"] == 0


@pytest.mark.parametrize(
    "typed, resolved",
    [
        ("Pong-v0", "Pong-v0"),
        ("Breakout-v0", "Breakout-v0"),
        ("SpaceInvaders-v0", "SpaceInvaders-v0"),
        ("ALE/Pong-v5", "ALE/Pong-v5"),
        ("PongNoFrameskip-v4", "PongNoFrameskip-v4"),
        ("Pong", "ALE/Pong-v5"),
        ("ALE/Breakout", "ALE/Breakout-v5"),
        ("PongNoFrameskip", "PongNoFrameskip-v4"),
        ("SpaceInvadersNoFrameskip", "SpaceInvadersNoFrameskip-v4"),
    ],
)
def test_ids_users_type_resolve_to_explicit_ids(typed, resolved):
    assert resolve_env_id(typed) == resolved


def test_a_bare_name_makes_the_modern_game():
    env = make_env("SpaceInvaders")
    assert env.spec.id == "ALE/SpaceInvaders-v5" and env.spec.kwargs["frameskip"] == 1


@pytest.mark.parametrize(
    "env_id, suggestion",
    [
        ("Breakout-v9", "`v0`, `v4`"),
        ("Pongg", "Did you mean: `Pong`?"),
        ("", "[namespace/](env-name)-v(version)"),
        ("ALE/Pong-v4", "Please use `ALE/Pong-v5`"),
    ],
)
def test_unknown_ids_raise_one_line_naming_the_id_and_gymnasiums_suggestion(env_id, suggestion):
    for call in (resolve_env_id, make_env):
        with pytest.raises(EnvIdError) as raised:
            call(env_id)
        message = str(raised.value)
        assert isinstance(raised.value, UserError)
        assert repr(env_id) in message and suggestion in message and "\n" not in message


def test_a_non_atari_id_is_refused():
    with pytest.raises(EnvIdError, match="not an Atari game"):
        resolve_env_id("CartPole-v1")


@pytest.mark.parametrize(
    "options",
    [{"frames_per_action": 0}, {"noop_max": -1}, {"repeat_action_probability": 1.5}],
)
def test_bad_options_are_user_errors(options):
    with pytest.raises(UserError):
        make_env("Pong-v0", **options)
