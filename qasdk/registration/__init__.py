"""The registration pipeline: discover → scan → declared → merge → validate → sync."""
