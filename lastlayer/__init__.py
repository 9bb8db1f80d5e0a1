"""lastlayer: a small PyTorch library behind a reproducible book of five papers on the last layer,
the initialisation and the training efficiency of CNNs."""
__version__ = "0.1.0"
