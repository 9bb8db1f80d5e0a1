"""The ASV poster's published numbers (validation accuracy %, peak over 1000 epochs) and the per-layer F34 stds
computed from its formulas (the check table of the paper's notes). Method keys are `lastlayer.init.METHODS`."""

METHODS = ("xavier", "kaiming_forward", "kaiming_backward", "asv_forward", "asv_backward")

# Table 1: F34 with Adam (best of its learning-rate grid 1e-6 ... 1e-3), 10-class subsets, 224x224
TABLE1 = {
    "car": dict(zip(METHODS, (71.95, 70.52, 73.10, 72.74, 81.49))),
    "food": dict(zip(METHODS, (72.83, 75.72, 69.75, 76.49, 78.81))),
    "fungi": dict(zip(METHODS, (65.23, 68.16, 66.99, 67.97, 69.73))),
}

# Table 2: F50 on Car with Adam
TABLE2 = {"car": dict(zip(METHODS, (69.23, 69.87, 71.23, 69.58, 80.77)))}

# Table 3: F50 on Car, one row per optimizer (learning rates not given)
TABLE3 = {
    "sgd": dict(zip(METHODS, (15.78, 35.15, 31.78, 35.29, 24.39))),
    "adadelta": dict(zip(METHODS, (15.78, 38.52, 39.53, 42.04, 50.22))),
    "adagrad": dict(zip(METHODS, (27.19, 36.37, 34.79, 43.33, 35.58))),
    "rmsprop": dict(zip(METHODS, (28.98, 41.75, 42.40, 42.47, 35.80))),
    "adam": dict(zip(METHODS, (31.56, 45.05, 48.06, 44.76, 51.15))),
}

PAPER_DATASETS = tuple(TABLE1)  # the image folders the paper trained on

# F34 (10 classes, 224x224): layer -> std of (Kaiming fwd, Kaiming bwd, ASV fwd, ASV bwd); ASV bwd of layer 33
# is capped (1.128 uncapped). Printed to 4 decimals.
F34_STD_COLUMNS = ("kaiming_forward", "kaiming_backward", "asv_forward", "asv_backward")
F34_STDS = {
    1: (0.1166, 0.0253, 0.0831, 0.1081), 2: (0.0589, 0.0589, 0.0263, 0.0596),
    **{l: (0.0589, 0.0589, 0.0596, 0.0596) for l in range(3, 8)}, 8: (0.0589, 0.0417, 0.0596, 0.0843),
    **{l: (0.0417, 0.0417, 0.0427, 0.0427) for l in range(9, 16)}, 16: (0.0417, 0.0295, 0.0427, 0.0604),
    **{l: (0.0295, 0.0295, 0.0309, 0.0309) for l in range(17, 28)}, 28: (0.0295, 0.0208, 0.0309, 0.0437),
    **{l: (0.0208, 0.0208, 0.0230, 0.0230) for l in range(29, 33)}, 33: (0.0208, 0.0208, 0.0230, 0.0691),
    34: (0.0625, 0.4472, 0.1084, 0.3162),
}
