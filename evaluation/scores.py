"""Reference scores of the Atari games, and the human-normalised score they give.

``REFERENCE_SCORES`` is keyed by the ALE ROM name (``spec.kwargs["game"]``):

- the 49 games of the Nature paper: Mnih et al. 2015, Extended Data Table 2, columns "Random
  play" and "Human" (a professional games tester), with one decimal as reprinted in the no-op
  table of van Hasselt et al. 2016 (Double DQN, AAAI);
- the 8 other games of the Atari-57 set (Berzerk, Defender, Phoenix, Pitfall!, Skiing, Solaris,
  Surround, Yars' Revenge): Badia et al. 2020 (Agent57, ICML), columns "Random" and "Average
  human", the figures DeepMind's DQN Zoo also uses (``dqn_zoo/atari_data.py``).

Later papers (Wang et al. 2016, Badia et al. 2020) use a newer human table for the 49 games as
well (Pong 14.6 instead of 9.3, Breakout 30.5 instead of 31.8); the figures here are the Nature
paper's, so a normalised score compares with the DQN it reported.
"""
import types

NATURE_2015 = "Mnih et al. 2015 (Nature), Extended Data Table 2"
AGENT57_2020 = "Badia et al. 2020 (Agent57), random and average-human scores"

_NATURE_SCORES = {
    "alien": (227.8, 6875.4),
    "amidar": (5.8, 1675.8),
    "assault": (222.4, 1496.4),
    "asterix": (210.0, 8503.3),
    "asteroids": (719.1, 13156.7),
    "atlantis": (12850.0, 29028.1),
    "bank_heist": (14.2, 734.4),
    "battle_zone": (2360.0, 37800.0),
    "beam_rider": (363.9, 5774.7),
    "bowling": (23.1, 154.8),
    "boxing": (0.1, 4.3),
    "breakout": (1.7, 31.8),
    "centipede": (2090.9, 11963.2),
    "chopper_command": (811.0, 9881.8),
    "crazy_climber": (10780.5, 35410.5),
    "demon_attack": (152.1, 3401.3),
    "double_dunk": (-18.6, -15.5),
    "enduro": (0.0, 309.6),
    "fishing_derby": (-91.7, 5.5),
    "freeway": (0.0, 29.6),
    "frostbite": (65.2, 4334.7),
    "gopher": (257.6, 2321.0),
    "gravitar": (173.0, 2672.0),
    "hero": (1027.0, 25762.5),
    "ice_hockey": (-11.2, 0.9),
    "jamesbond": (29.0, 406.7),
    "kangaroo": (52.0, 3035.0),
    "krull": (1598.0, 2394.6),
    "kung_fu_master": (258.5, 22736.2),
    "montezuma_revenge": (0.0, 4366.7),
    "ms_pacman": (307.3, 15693.4),
    "name_this_game": (2292.3, 4076.2),
    "pong": (-20.7, 9.3),
    "private_eye": (24.9, 69571.3),
    "qbert": (163.9, 13455.0),
    "riverraid": (1338.5, 13513.3),
    "road_runner": (11.5, 7845.0),
    "robotank": (2.2, 11.9),
    "seaquest": (68.4, 20181.8),
    "space_invaders": (148.0, 1652.3),
    "star_gunner": (664.0, 10250.0),
    "tennis": (-23.8, -8.9),
    "time_pilot": (3568.0, 5925.0),
    "tutankham": (11.4, 167.6),
    "up_n_down": (533.4, 9082.0),
    "venture": (0.0, 1187.5),
    "video_pinball": (16256.9, 17297.6),
    "wizard_of_wor": (563.5, 4756.5),
    "zaxxon": (32.5, 9173.3),
}

_AGENT57_SCORES = {
    "berzerk": (123.7, 2630.4),
    "defender": (2874.5, 18688.9),
    "phoenix": (761.4, 7242.6),
    "pitfall": (-229.4, 6463.7),
    "skiing": (-17098.1, -4336.9),
    "solaris": (1236.3, 12326.7),
    "surround": (-10.0, 6.5),
    "yars_revenge": (3092.9, 54576.9),
}

REFERENCE_SCORES = types.MappingProxyType({**_NATURE_SCORES, **_AGENT57_SCORES})
"""ALE ROM name -> (random score, human score); read-only."""


def reference_source(game):
    """The publication a game's reference scores come from; None for a game without them."""
    if game in _NATURE_SCORES:
        return NATURE_2015
    return AGENT57_2020 if game in _AGENT57_SCORES else None


def human_normalized(game, score):
    """``(score - random) / (human - random)`` for ``game`` (an ALE ROM name); None without references.

    0 is the random player's score, 1 the human tester's; the papers print it times 100.
    """
    if game not in REFERENCE_SCORES:
        return None
    random_score, human_score = REFERENCE_SCORES[game]
    return (score - random_score) / (human_score - random_score)

