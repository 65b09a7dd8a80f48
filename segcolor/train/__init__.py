"""Training of category experts: config, data, losses, the loop, DDP helpers.

Entry point: ``segcolor train CONFIG`` (``segcolor.commands.train``) or
``segcolor.train.engine.main(config_path, overrides, resume)``.
"""
