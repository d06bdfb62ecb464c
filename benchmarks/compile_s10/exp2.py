import d1
ORIG_T = comp._langevin_transition
def score_only_transition(f, step_size, noise_scale, grad_clip):
    g = torch.func.grad(lambda x: f(x).sum())
    def transition(x, score, z, low, high):
        drift = score if grad_clip is None else score.clamp(-grad_clip, grad_clip)
        x_new = torch.add(x, drift, alpha=step_size)
        if z is not None:
            x_new = torch.add(x_new, z, alpha=noise_scale)
        if low is not None:
            x_new = torch.clamp(x_new, low, high)
        return x_new, x_new.new_zeros(x_new.shape[0]), g(x_new)
    return transition
class SO:   # backend factory that also swaps the transition while this variant is built
    def __init__(self, sb): self.sb = sb
    def __call__(self, mode):
        comp._langevin_transition = score_only_transition
        return self.sb(mode)
VARS["cpp_wrapper"] = backend_with(None, cpp_wrapper=True)
VARS["no size_asserts"] = backend_with(None, size_asserts=False)
VARS["score-only (measurement only)"] = SO(ORIG_B)
VARS["score-only + cpp_wrapper"] = SO(backend_with(None, cpp_wrapper=True))
