"""The floor every other package stands on, standard library only: the one-line user errors
(``errors``), files written atomically (``atomic_file``) and the run-log format (``runlog``).

``reward_visualizer.py`` imports it without Keras, so a plot appears in a second.
"""
