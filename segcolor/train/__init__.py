"""Training: experts, profile classifiers and the router's gray head, in one loop.

Entry point: ``segcolor train CONFIG`` (``segcolor.commands.train``) or
``segcolor.train.engine.main(config_path, overrides, resume)``. Layers, each importing only
those below it: ``engine`` -> ``tasks`` (the registry) -> the tasks (``expert``,
``profile_classifier``, ``profile_features``, ``gray_head``) -> ``loop`` (the epochs) ->
``run``, ``schedule`` (a run's folder, checkpoint, RNGs, learning rate) and the data
(``sources``, ``routed``, ``cache``, ``data``, ``losses``, ``config``).
"""
