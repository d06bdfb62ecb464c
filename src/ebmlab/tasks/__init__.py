"""What each command does (sample, evaluate, plot, compose, inpaint), as plain functions the CLI calls."""
