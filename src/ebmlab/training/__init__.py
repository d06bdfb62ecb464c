"""Contrastive-divergence training: the loss, the replay buffer, the trainer loop."""
