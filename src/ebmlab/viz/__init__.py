"""Pictures: 2-D density panels, training curves, chain traces, PNG grids of images."""
