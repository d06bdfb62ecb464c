"""Ready networks n(x) for EnergyModel: an MLP for vectors, conv/ResNet energies for images, the digits logits net."""
