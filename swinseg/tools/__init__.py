"""Tools around training: the synthetic demo dataset, dataset checks, training curves."""
