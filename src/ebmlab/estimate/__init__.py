"""The normalising constant: exact quadrature and enumeration, AIS, and the exact NLL built on them."""
