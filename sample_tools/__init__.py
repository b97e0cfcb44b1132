"""Example tools for qasdk: ``qasdk sync sample_tools`` registers them."""
