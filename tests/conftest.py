"""Test-wide settings. One intra-op thread per worker: the suite runs as 2 xdist workers on
2 cores, and small tensor ops with 2 threads per worker ran several times slower here."""
import torch

torch.set_num_threads(1)
