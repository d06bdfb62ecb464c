VARS["cpp_wrapper"] = Variant(patches=dict(cpp_wrapper=True))
VARS["no size_asserts"] = Variant(patches=dict(size_asserts=False))
VARS["score-only (measurement only)"] = Variant(score_only=True)
VARS["score-only + cpp_wrapper"] = Variant(patches=dict(cpp_wrapper=True), score_only=True)
