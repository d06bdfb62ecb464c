"""The run directory on disk: layout, checkpoints, configuration, and loading a trained model."""
