import d1
VARS["conv1 one mm"] = backend_with(d1.ONE_MM)
VARS["cpp_wrapper"] = backend_with(None, cpp_wrapper=True)
