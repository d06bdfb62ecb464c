"""Sample quality and chain diagnostics: Frechet distance, MMD, ESS / R-hat, out-of-distribution scores."""
