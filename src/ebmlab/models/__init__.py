"""Models: EnergyModel, class-conditional EBMs and the composition algebra."""
