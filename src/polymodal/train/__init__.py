"""Training engine: configs, trainer, data, optimisation."""
