"""The report's published numbers and settings (its text and Table I; its figures' values were lost with the PDF)."""
from __future__ import annotations

# Table I: test accuracy, mean ± std over 10 rounds, with each model's (c1, c2, hidden, BN, skip, lr).
TABLE1 = {"pair": (0.83, 0.012), "siamese2": (0.93, 0.004), "siamese10": (0.98, 0.006)}
TABLE1_SETTINGS = {"pair": (64, 64, 64, True, False, 1.0),
                   "siamese2": (64, 64, 64, True, False, 0.25),
                   "siamese10": (64, 64, 64, True, False, 0.25)}
NAMES = {"pair": "pair", "siamese2": "siamese 2", "siamese10": "siamese 10"}

# The protocol of Section II: 1000 pairs per split, SGD, batch 100, 25 epochs, 10 rounds per setting.
N_PAIRS, BATCH_SIZE, EPOCHS, ROUNDS = 1000, 100, 25, 10

# The cross-validated grids of Section II.
LEARNING_RATES = (0.001, 0.01, 0.1, 0.25, 1.0)
CHANNELS = (8, 16, 32, 64)
HIDDEN = (64, 128, 256, 512)

# Section III: the best learning rates (Figure 1b), the auxiliary-loss weights (Figure 1c: best mean at
# (1, 0.1), most consistent at (1, 10^-0.5), the one Table I uses).
BEST_LRS = (0.1, 0.25)
W_AUX = 10 ** -0.5
BEST_W_AUX = (0.1, 10 ** -0.5)

