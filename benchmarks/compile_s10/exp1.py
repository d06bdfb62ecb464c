import d1
VARS["conv1 one mm"] = Variant(d1.ONE_MM)
VARS["cpp_wrapper"] = Variant(patches=dict(cpp_wrapper=True))
